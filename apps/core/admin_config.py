from django.contrib.admin.apps import AdminConfig


class SmartCollectionAdminConfig(AdminConfig):
    """The admin with two-factor login for every page (see accounts.admin_site)."""

    default_site = "apps.accounts.admin_site.SmartCollectionAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from django.contrib import admin

        admin.site.restrict_unscoped_admins()  # type: ignore[attr-defined]  # default_site above; the stubs know an AdminSite
