import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.customers.selectors import account_reading_consent_by_reference
from apps.customers.services import plaid_item_link
from apps.lenders.selectors import lender_get_by_slug


class Command(BaseCommand):
    help = (
        "Link the Plaid Item a customer connected to their consent to account reading, so "
        "Plaid's webhooks for it can raise funds alerts. The Item's access token (from "
        "Plaid's /item/public_token/exchange) is read from standard input, never from the "
        "command line, and kept sealed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lender_slug")
        parser.add_argument("consent_reference", help="the consent's reference: arc_…")
        parser.add_argument("item_id", help="Plaid's item_id for the customer's bank login")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lender = lender_get_by_slug(slug=options["lender_slug"])
        except DomainError as exc:
            raise CommandError("No such lender.") from exc
        consent = account_reading_consent_by_reference(
            lender_id=lender.pk, reference=options["consent_reference"]
        )
        if consent is None:
            raise CommandError("The lender has no consent with that reference.")
        token = sys.stdin.readline().strip()
        try:
            item = plaid_item_link(
                consent_id=consent.pk,
                lender_id=lender.pk,
                item_id=options["item_id"],
                access_token=token,
                actor=Actor.system(),
            )
        except DomainError as exc:
            raise CommandError(
                "The consent is not in force, or the item id or access token is empty."
            ) from exc
        self.stdout.write(f"Plaid item {item.item_id} linked to consent {consent.reference}")
