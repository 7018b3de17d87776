from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.lenders.services import lender_create


class Command(BaseCommand):
    help = "Create a lender (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. KE")
        parser.add_argument("--currency", required=True, help="ISO 4217, e.g. KES")
        parser.add_argument("--timezone", required=True, help="IANA, e.g. Africa/Nairobi")
        parser.add_argument("--locale", default="en", help="en, es or zh-hans")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.exceptions import ValidationError

        try:
            lender = lender_create(
                name=options["name"],
                slug=options["slug"],
                country=options["country"],
                currency=options["currency"],
                timezone=options["timezone"],
                locale=options["locale"],
                actor=Actor.system(),
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"created lender {lender.slug} (id {lender.pk})")
