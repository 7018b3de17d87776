"""Writes for collections, by concern; the public names are re-exported here."""

from apps.collections.services.agent_moves import loan_stage_lift, loan_stage_lock_now
from apps.collections.services.books import loan_books_replay
from apps.collections.services.evidence import loan_evidence_export
from apps.collections.services.funds import FundsAlertIn, FundsAlertOutcome, funds_alert_apply
from apps.collections.services.funds_plaid import plaid_webhook_apply
from apps.collections.services.late_fees import installment_late_fees_assess
from apps.collections.services.lender_loans import (
    ConsentIn,
    CustomerIn,
    LoanCreated,
    loan_create_for_lender,
)
from apps.collections.services.loans import Quote, loan_financed_minimum, loan_quote, loan_sign
from apps.collections.services.manual import (
    loan_cancel,
    loan_manual_lock_decide,
    loan_manual_lock_request,
    loan_reminder_resend,
)
from apps.collections.services.notices import overdue_notices_queue, restriction_notices_queue
from apps.collections.services.offered import loan_action_refusals
from apps.collections.services.pauses import (
    loan_hardship_pause_set,
    loan_hardship_request,
    loan_legal_hold_set,
    loan_pause_decide,
    loan_promise_record,
)
from apps.collections.services.payments import PaymentOutcome, payment_record
from apps.collections.services.provider_payments import (
    ProviderEventOutcome,
    payment_attempt_reconcile,
    payment_attempt_start,
    payment_attempts_claim,
    payment_attempts_reconcile,
    provider_event_apply,
)
from apps.collections.services.reconciliation import (
    reconciliation_report_build,
    reconciliation_reports_build,
)
from apps.collections.services.reminders import payment_receipt_queue, reminders_queue
from apps.collections.services.replies import (
    inbound_messages_handle,
    inbound_text_answer,
    inbound_texts_answer,
    login_links_masked,
)
from apps.collections.services.reversals import ReversalOutcome, payment_reverse
from apps.collections.services.sales import (
    sale_consent_confirm,
    sale_consent_send,
    sale_consent_text,
    sale_customer_set,
    sale_down_payment_minimum,
    sale_phone_set,
    sale_plan_quote,
    sale_plan_set,
    sale_quote,
    sale_sign,
)
from apps.collections.services.settle import loan_stage_settle
from apps.collections.services.stages import loan_classify, loan_stage_changes_apply
from apps.collections.services.support_pins import (
    SupportPinOutcome,
    loan_support_pin_decide,
    loan_support_pin_request,
)
from apps.collections.services.suspensions import (
    restrictions_resume,
    restrictions_suspend,
    restrictions_suspension_apply,
)
from apps.collections.services.sweep import (
    SweepForecast,
    SweepReport,
    lender_business_date,
    loan_stage_sweep,
    loan_sweep_fan_out,
    loan_sweep_ranges,
    sweep_forecast,
)
from apps.collections.services.voice import VoiceReply, voice_key_apply
from apps.collections.services.webhooks import (
    WebhookOutcome,
    WebhookPayload,
    payment_webhook_apply,
    webhook_rejection_record,
)

__all__ = [
    "ConsentIn",
    "CustomerIn",
    "FundsAlertIn",
    "FundsAlertOutcome",
    "LoanCreated",
    "PaymentOutcome",
    "ProviderEventOutcome",
    "Quote",
    "ReversalOutcome",
    "SupportPinOutcome",
    "SweepForecast",
    "SweepReport",
    "VoiceReply",
    "WebhookOutcome",
    "WebhookPayload",
    "funds_alert_apply",
    "inbound_messages_handle",
    "inbound_text_answer",
    "inbound_texts_answer",
    "installment_late_fees_assess",
    "lender_business_date",
    "loan_action_refusals",
    "loan_books_replay",
    "loan_cancel",
    "loan_classify",
    "loan_create_for_lender",
    "loan_evidence_export",
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
    "loan_stage_changes_apply",
    "loan_stage_lift",
    "loan_stage_lock_now",
    "loan_stage_settle",
    "loan_stage_sweep",
    "loan_support_pin_decide",
    "loan_support_pin_request",
    "loan_sweep_fan_out",
    "loan_sweep_ranges",
    "login_links_masked",
    "overdue_notices_queue",
    "payment_attempt_reconcile",
    "payment_attempt_start",
    "payment_attempts_claim",
    "payment_attempts_reconcile",
    "payment_receipt_queue",
    "payment_record",
    "payment_reverse",
    "payment_webhook_apply",
    "plaid_webhook_apply",
    "provider_event_apply",
    "reconciliation_report_build",
    "reconciliation_reports_build",
    "reminders_queue",
    "restriction_notices_queue",
    "restrictions_resume",
    "restrictions_suspend",
    "restrictions_suspension_apply",
    "sale_consent_confirm",
    "sale_consent_send",
    "sale_consent_text",
    "sale_customer_set",
    "sale_down_payment_minimum",
    "sale_phone_set",
    "sale_plan_quote",
    "sale_plan_set",
    "sale_quote",
    "sale_sign",
    "sweep_forecast",
    "voice_key_apply",
    "webhook_rejection_record",
]
