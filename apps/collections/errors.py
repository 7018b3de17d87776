from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError, NotFound


class LoanNotFound(NotFound):
    code = "loan_not_found"
    default_message = _("No such loan.")


class LoanNotPayable(DomainError):
    code, http_status = "loan_not_payable", 409
    default_message = _("This loan cannot take payments in its current status.")


class LoanTransitionNotAllowed(DomainError):
    code, http_status = "loan_transition_not_allowed", 409
    default_message = _("The loan cannot move to that status.")


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"
    default_message = _("The payment's currency is not the loan's currency.")


class AmountNotInMinorUnits(DomainError):
    code = "amount_not_in_minor_units"
    default_message = _("The amount has more decimal places than the currency allows.")


class DownPaymentTooSmall(DomainError):
    code = "down_payment_too_small"
    default_message = _("The down payment is below the product's minimum.")


class DownPaymentTooLarge(DomainError):
    code = "down_payment_too_large"
    default_message = _("The down payment must be less than the device price.")


class FinancedAmountTooSmall(DomainError):
    """The terms cannot spread the amount: an installment would owe nothing. Names the
    smallest amount they can finance (``apps.collections.schedule.smallest_financed``)."""

    code = "financed_amount_too_small"
    default_message = _(
        "The amount financed is too small for this plan: an installment would owe nothing."
    )

    def __init__(self, *, minimum: Decimal, currency: str) -> None:
        message = _(
            "The amount financed is too small for this plan: an installment would owe nothing. "
            "The smallest amount it can finance is %(currency)s %(minimum)s: lower the down "
            "payment, or choose a plan with fewer installments."
        ) % {"currency": currency, "minimum": minimum}
        super().__init__(message, minimum=str(minimum), currency=currency)


class ProductNotAvailable(DomainError):
    code = "product_not_available"
    default_message = _("This product is not available for new loans.")


class ReversalExceedsPayment(DomainError):
    code, http_status = "reversal_exceeds_payment", 409
    default_message = _("The reversals would exceed the payment they refer to.")


class RestrictionPolicyMissing(DomainError):
    code, http_status = "restriction_policy_missing", 409
    default_message = _("The lender has no restriction policy in force, so no loan can be signed.")


class ConsentMissing(DomainError):
    code, http_status = "consent_missing", 409
    default_message = _("The customer's recorded consent to these terms is missing.")


class ConsentAlreadyUsed(DomainError):
    code, http_status = "consent_already_used", 409
    default_message = _("This consent was already used for another loan.")


class DevicePriceInvalid(DomainError):
    code = "device_price_invalid"
    default_message = _("The device price must be above zero.")


class PauseAlreadyOpen(DomainError):
    code, http_status = "pause_already_open", 409
    default_message = _("This loan already has an open pause of this kind.")


class PauseTooLong(DomainError):
    code = "pause_too_long"
    default_message = _("A pause must end between today and the longest pause allowed.")


class NothingOverdue(DomainError):
    code, http_status = "nothing_overdue", 409
    default_message = _("Nothing is overdue on this loan: there is nothing to promise.")


class PauseNotOpen(DomainError):
    code, http_status = "pause_not_open", 409
    default_message = _("This pause is no longer open.")


class SupervisorRequired(DomainError):
    code, http_status = "supervisor_required", 403
    default_message = _("Only a supervisor or the lender's admin may do this.")


class PauseReasonRequired(DomainError):
    code = "pause_reason_required"
    default_message = _("Say why: a pause needs a reason.")


class ManualLockNotAllowed(DomainError):
    code, http_status = "manual_lock_not_allowed", 409
    default_message = _(
        "This loan's phone cannot be locked by hand: the loan must be active, late enough for "
        "the country's rules (30 days where locking is allowed), not paused or on hold, and not "
        "locked already."
    )


class SecondPersonRequired(DomainError):
    code, http_status = "second_person_required", 403
    default_message = _("A manual lock needs a second person: you cannot approve your own request.")


class ManualLockDecided(DomainError):
    code, http_status = "manual_lock_decided", 409
    default_message = _("This request was already decided or has expired.")


class LoanCancelRefused(DomainError):
    code, http_status = "loan_cancel_refused", 409
    default_message = _(
        "Only a loan whose phone never enrolled and that has no payment can be cancelled."
    )


class NothingToRemind(DomainError):
    code, http_status = "nothing_to_remind", 409
    default_message = _("Only an active loan with something due has a reminder to send.")


class ReceivedBeforeSigning(DomainError):
    code = "received_before_signing"
    default_message = _("The money is dated before the loan was signed.")


class SuspensionNotAllowed(DomainError):
    code, http_status = "suspension_not_allowed", 403
    default_message = _(
        "Only a platform operator may suspend restrictions for a country or another lender; a "
        "lender's admin may for their own lender."
    )


class SuspensionScopeInvalid(DomainError):
    code = "suspension_scope_invalid"
    default_message = _("Suspend either one lender or one country (two capital letters).")


class SuspensionAlreadyOpen(DomainError):
    code, http_status = "suspension_already_open", 409
    default_message = _("Restrictions are already suspended there.")


class SuspensionNotOpen(DomainError):
    code, http_status = "suspension_not_open", 409
    default_message = _("This suspension was lifted already.")


class ReasonRequired(DomainError):
    code = "reason_required"
    default_message = _("Say why: this needs a reason.")


class RestrictionsSuspended(DomainError):
    code, http_status = "restrictions_suspended", 409
    default_message = _("Restrictions are suspended for this lender: no phone may be locked now.")


class LockNotNoticed(DomainError):
    code, http_status = "lock_not_noticed", 409
    default_message = _(
        "The customer has not been told of a lock yet: a notice naming it and its date must "
        "have been confirmed (by the phone, or accepted by the SMS provider) at least the "
        "country's notice days before. The next sweep sends it."
    )


class SupportPinReasonRequired(DomainError):
    code = "support_pin_reason_required"
    default_message = _("Say why: a support PIN needs a reason (for example the payment checked).")


class SupportPinChallengeInvalid(DomainError):
    code = "support_pin_challenge_invalid"
    default_message = _("The challenge is the 6 digits the phone's lock screen shows.")


class SupportPinNoPhone(DomainError):
    code, http_status = "support_pin_no_phone", 409
    default_message = _("This loan has no enrolled phone to unlock.")


class SupportPinLimit(DomainError):
    code, http_status = "support_pin_limit", 429
    default_message = _("You asked for too many support PINs in the last hour. Try again later.")


class SupportPinSecondPerson(DomainError):
    code, http_status = "support_pin_second_person", 403
    default_message = _(
        "No payment was recorded since the phone was restricted: a second person, a "
        "supervisor, must approve this PIN, and never their own request."
    )


class SupportPinDecided(DomainError):
    code, http_status = "support_pin_decided", 409
    default_message = _("This support PIN request was already decided or has expired.")


class NothingToPay(DomainError):
    code, http_status = "nothing_to_pay", 409
    default_message = _("There is nothing to pay on this loan.")


class PaymentAlreadyStarted(DomainError):
    code, http_status = "payment_already_started", 409
    default_message = _(
        "A payment prompt was sent to the phone a moment ago: answer it with the M-Pesa PIN, "
        "or try again in two minutes."
    )


class PaymentStartFailed(DomainError):
    code, http_status = "payment_start_failed", 502
    default_message = _("The payment provider did not take the request. Nothing was charged.")


class PaymentStartUncertain(PaymentStartFailed):
    code = "payment_start_uncertain"
    default_message = _(
        "M-Pesa did not answer in time. If a payment prompt reaches the phone, it can be paid; "
        "if none comes within two minutes, try again."
    )


class PaymentCallbackRefused(DomainError):
    """A provider's verified callback we will not apply (its ``code`` says why)."""

    code, http_status = "callback_refused", 409
    default_message = _("The provider's callback was not applied.")


class UnknownAttempt(PaymentCallbackRefused):
    code, http_status = "unknown_attempt", 404
    default_message = _("The callback answers a payment that was never started here.")


class AttemptAmountMismatch(PaymentCallbackRefused):
    code, http_status = "amount_mismatch", 409
    default_message = _("The amount paid is not the amount asked for.")


class ReceiptSeenBefore(PaymentCallbackRefused):
    code, http_status = "receipt_seen_before", 409
    default_message = _("This receipt already paid another payment.")


class UnknownPayment(PaymentCallbackRefused):
    code, http_status = "unknown_payment", 404
    default_message = _("The reversal names a payment not received here (yet).")


class PaymentNotConfirmed(PaymentCallbackRefused):
    code, http_status = "not_confirmed", 409
    default_message = _("The provider does not confirm this payment.")


class InboundNoteRequired(DomainError):
    code = "inbound_note_required"
    default_message = _("Say what was done: a note is kept with the customer's messages.")


class ScheduleInvalid(DomainError):
    code = "schedule_invalid"
    default_message = _(
        "The schedule must number its installments from 1, fall due one after another after "
        "the signing date, owe something each, in the currency's minor units, and repay "
        "exactly the financed amount."
    )
