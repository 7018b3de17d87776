"""manage.py payments_mpesa_register_urls LENDER_SLUG: tell M-Pesa where the lender's paybill
sends its C2B validations and confirmations (the customer paying from the M-Pesa menu)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.integrations.payments.base import ProviderError
from apps.integrations.services import mpesa_callbacks_register
from apps.lenders.selectors import lender_get_by_slug


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lender_slug")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lender = lender_get_by_slug(slug=options["lender_slug"])
            confirmation, validation = mpesa_callbacks_register(
                lender_id=lender.pk, lender_slug=lender.slug, actor=Actor.system()
            )
        except (DomainError, ProviderError) as exc:
            raise CommandError(f"not registered: {getattr(exc, 'code', '')} {exc}") from exc
        self.stdout.write(f"registered with M-Pesa for {lender.slug}:")
        self.stdout.write("  confirmation: " + confirmation.split("/daraja/")[0] + "/daraja/…")
        self.stdout.write("  validation:   " + validation.split("/daraja/")[0] + "/daraja/…")
