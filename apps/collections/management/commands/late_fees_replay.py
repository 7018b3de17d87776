"""Replay the books of every loan with a late fee, so fees follow when money was received.

Run once after upgrading to the release where late fees are decided by when money was
received: a fee the old run stamped on an installment that was paid in time (the money
posted after the run) is taken back, and the loan's stage and phone follow. Each loan in its
own transaction; safe to run again (a second run changes nothing).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.collections.selectors import loan_ids_with_late_fees
from apps.collections.services import loan_books_replay
from apps.core.actor import Actor


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lender", type=int, help="only this lender's loans (its id)")

    def handle(self, *args: Any, lender: int | None, **options: Any) -> None:
        changed = seen = 0
        for loan_id in loan_ids_with_late_fees(lender_id=lender):
            seen += 1
            changed += loan_books_replay(loan_id=loan_id, actor=Actor.system())
        self.stdout.write(f"late_fees_replay: {seen} loans with a late fee, {changed} changed")
