import getpass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_get_by_slug
from apps.lenders.services import agent_create


class Command(BaseCommand):
    help = "Create a back-office user of a lender (audited). They set up 2FA at first login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lender", required=True, metavar="SLUG")
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--role", choices=[r.value for r in Membership.Role], default="agent")

    def handle(self, *args: Any, **options: Any) -> None:
        password = getpass.getpass("Password: ")
        try:
            user = agent_create(
                lender=lender_get_by_slug(slug=options["lender"]),
                username=options["username"],
                email=options["email"],
                password=password,
                role=Membership.Role(options["role"]),
                actor=Actor.system(),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"created {user.username} ({options['role']} at {options['lender']})")
