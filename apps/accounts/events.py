from enum import StrEnum


class AccountsAction(StrEnum):
    USER_CREATED = "accounts.user.created"
    PASSWORD_CHANGED = "accounts.user.password_changed"  # noqa: S105  (an action name)
    TOTP_DEVICE_CONFIRMED = "accounts.totp_device.confirmed"
    USER_VERIFIED = "accounts.user.verified"
    USER_VERIFICATION_FAILED = "accounts.user.verification_failed"
    USER_LOCKED_OUT = "accounts.user.locked_out"
