"""Writes for collections, by concern; the public names are re-exported here."""

from apps.collections.services.lending import (
    PaymentOutcome,
    Quote,
    ReversalOutcome,
    WebhookOutcome,
    WebhookPayload,
    installment_late_fees_assess,
    loan_books_replay,
    loan_financed_minimum,
    loan_quote,
    loan_sign,
    payment_record,
    payment_reverse,
    payment_webhook_apply,
    webhook_rejection_record,
)
from apps.collections.services.manual import (
    loan_cancel,
    loan_manual_lock_decide,
    loan_manual_lock_request,
    loan_reminder_resend,
)
from apps.collections.services.pauses import (
    loan_hardship_pause_set,
    loan_hardship_request,
    loan_legal_hold_set,
    loan_pause_decide,
    loan_promise_record,
)
from apps.collections.services.reminders import payment_receipt_queue, reminders_queue
from apps.collections.services.restriction import (
    loan_stage_lift,
    loan_stage_settle,
    loan_stage_sweep,
    loan_sweep_fan_out,
    loan_sweep_ranges,
    overdue_notices_queue,
    restriction_notices_queue,
)
from apps.collections.services.suspensions import (
    restrictions_resume,
    restrictions_suspend,
    restrictions_suspension_apply,
)

__all__ = [
    "PaymentOutcome",
    "Quote",
    "ReversalOutcome",
    "WebhookOutcome",
    "WebhookPayload",
    "installment_late_fees_assess",
    "loan_books_replay",
    "loan_cancel",
    "loan_financed_minimum",
    "loan_hardship_pause_set",
    "loan_hardship_request",
    "loan_legal_hold_set",
    "loan_manual_lock_decide",
    "loan_manual_lock_request",
    "loan_pause_decide",
    "loan_promise_record",
    "loan_quote",
    "loan_reminder_resend",
    "loan_sign",
    "loan_stage_lift",
    "loan_stage_settle",
    "loan_stage_sweep",
    "loan_sweep_fan_out",
    "loan_sweep_ranges",
    "overdue_notices_queue",
    "payment_receipt_queue",
    "payment_record",
    "payment_reverse",
    "payment_webhook_apply",
    "reminders_queue",
    "restriction_notices_queue",
    "restrictions_resume",
    "restrictions_suspend",
    "restrictions_suspension_apply",
    "webhook_rejection_record",
]
