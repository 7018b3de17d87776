"""Writes for collections, by concern; the public names are re-exported here."""

from apps.collections.services.lending import (
    PaymentOutcome,
    Quote,
    ReversalOutcome,
    WebhookOutcome,
    WebhookPayload,
    installment_late_fees_assess,
    loan_quote,
    loan_sign,
    payment_record,
    payment_reverse,
    payment_webhook_apply,
    webhook_rejection_record,
)

__all__ = [
    "PaymentOutcome",
    "Quote",
    "ReversalOutcome",
    "WebhookOutcome",
    "WebhookPayload",
    "installment_late_fees_assess",
    "loan_quote",
    "loan_sign",
    "payment_record",
    "payment_reverse",
    "payment_webhook_apply",
    "webhook_rejection_record",
]
