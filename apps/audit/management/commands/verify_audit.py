from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.selectors import audit_chain_list, audit_chain_verify
from apps.core.errors import DomainError
from apps.lenders.selectors import lender_get_by_slug


class Command(BaseCommand):
    help = "Verify the audit hash chains; print the first broken link of each. Exit 1 if any."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lender", metavar="SLUG", help="Verify only this lender's chain.")

    def handle(self, *args: Any, lender: str | None = None, **options: Any) -> None:
        try:
            lender_id = lender_get_by_slug(slug=lender).id if lender else None
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({lender})") from exc
        broken = 0
        checked = 0
        for chain in audit_chain_list(lender_id=lender_id):
            checked += 1
            name = chain.lender.slug if chain.lender else "platform"
            found = audit_chain_verify(chain=chain)
            if found is None:
                self.stdout.write(f"OK      {name}: {chain.last_seq} events")
                continue
            broken += 1
            event = f"event id {found.event_id}" if found.event_id else "no event"
            self.stdout.write(
                f"BROKEN  {name}: first broken link at seq {found.seq} ({event}): {found.problem}"
            )
        if broken:
            raise CommandError(f"{broken} of {checked} chains broken", returncode=1)
        self.stdout.write(f"{checked} chains verified")
