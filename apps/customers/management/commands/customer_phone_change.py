from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.customers.services import customer_phone_change


class Command(BaseCommand):
    help = (
        "Give a customer another mobile number (audited, with the reason). Refused if the "
        "number is another customer's of the lender. Used to settle customers who share a "
        "number before migration customers.0005."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer_id", type=int)
        parser.add_argument("phone", help="as dialled in the lender's country, or +E.164")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            customer = customer_phone_change(
                customer_id=options["customer_id"],
                phone=options["phone"],
                actor=Actor.system(),
                reason=options["reason"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"customer {customer.pk}: number now ends in {customer.phone[-3:]}")
