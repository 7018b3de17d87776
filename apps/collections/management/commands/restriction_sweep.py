"""Run the restriction sweep now, for one lender or all, on their local business date.

The same service the morning beat task runs, range by range, in this
process. Safe to run again the same day: it changes nothing twice.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.collections.services.sweep import (
    lender_business_date,
    loan_stage_sweep,
    loan_sweep_ranges,
)
from apps.lenders.models import Lender


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lender", help="the lender's slug (default: every lender)")

    def handle(self, *args: Any, lender: str | None, **options: Any) -> None:
        lenders = Lender.objects.order_by("pk")
        if lender:
            lenders = lenders.filter(slug=lender)
            if not lenders.exists():
                raise CommandError(f"No lender {lender!r}.")
        for one in lenders:
            business_date = lender_business_date(lender_id=one.pk)
            changes = phones = 0
            for id_from, id_to in loan_sweep_ranges(
                lender_id=one.pk, size=settings.SWEEP_RANGE_SIZE
            ):
                report = loan_stage_sweep(
                    lender_id=one.pk, business_date=business_date, id_from=id_from, id_to=id_to
                )
                changes, phones = changes + report.changes, phones + report.phones
            self.stdout.write(
                f"{one.slug} {business_date}: {changes} stage changes, {phones} phones told"
            )
