from enum import StrEnum


class CollectionsAction(StrEnum):
    LOAN_SIGNED = "collections.loan.signed"
    LOAN_STATUS_CHANGED = "collections.loan.status_changed"
    LOAN_PAID_OFF = "collections.loan.paid_off"
    LOAN_RELEASED_WITH_ARREARS = "collections.loan.released_with_arrears"
    PAYMENT_RECEIVED = "collections.payment.received"
    PAYMENT_ALLOCATED = "collections.payment.allocated"
    PAYMENT_REVERSED = "collections.payment.reversed"
    LATE_FEE_ASSESSED = "collections.late_fee.assessed"
    LATE_FEE_REVERSED = "collections.late_fee.reversed"
    WEBHOOK_REJECTED = "collections.webhook.rejected"
    STAGE_CHANGED = "collections.loan.stage_changed"
    RESTRICTIONS_SUSPENDED = "collections.restrictions.suspended"
    RESTRICTIONS_RESUMED = "collections.restrictions.resumed"
    PAUSE_OPENED = "collections.pause.opened"
    PAUSE_DECIDED = "collections.pause.decided"
    PAUSE_CLOSED = "collections.pause.closed"
    MANUAL_LOCK_REQUESTED = "collections.manual_lock.requested"
    MANUAL_LOCK_DECIDED = "collections.manual_lock.decided"
    REMINDER_RESENT = "collections.reminder.resent"
    LOAN_CANCELLED = "collections.loan.cancelled"
