from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.front import views as front

# our own error pages, in the site's style and the visitor's language (CSRF_FAILURE_VIEW too)
handler403 = front.permission_denied
handler404 = front.page_not_found
handler500 = front.server_error

urlpatterns = [
    path("", front.front_door, name="front-door"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("pos/", include("apps.counter.urls")),
    path("api/payments/v1/", include("apps.collections.api.urls")),
    path("api/agent/v1/", include("apps.devices.api.urls")),
    path("api/messaging/v1/", include("apps.notifications.api.urls")),
    path("api/voice/v1/", include("apps.notifications.api.voice_urls")),
    path("api/funds/v1/", include("apps.collections.api.funds_urls")),
    path("api/lender/v1/", include("apps.collections.api.lender.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # the split view serves Swagger UI's init script as a file of its own: no inline script (CSP)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("my/<slug:lender_slug>/", include("apps.selfservice.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
]
if settings.PAYMENTS_FAKE_CHECKOUT:  # the demo payment provider; never in production
    urlpatterns.append(path("demo-provider/", include("apps.integrations.payments.urls")))
