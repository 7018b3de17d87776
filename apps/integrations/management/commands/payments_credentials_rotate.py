"""manage.py payments_credentials_rotate: seal every provider account's secrets again under the
newest key of PAYMENTS_CREDENTIALS_KEYS, so that an older key can then be dropped."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.core.actor import Actor
from apps.integrations.services import provider_accounts_reseal


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        done = provider_accounts_reseal(actor=Actor.system())
        self.stdout.write(f"{done} provider accounts sealed under the newest key")
