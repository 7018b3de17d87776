"""Writes for devices, by concern; the public names are re-exported here."""

from apps.devices.services.agent import (
    CheckIn,
    SignedState,
    device_ack,
    device_authenticate,
    device_check_in,
    device_event_report,
    device_fcm_token_set,
)
from apps.devices.services.enrollment import (
    Enrollment,
    MintedToken,
    device_enroll,
    device_register,
    device_registrations_void,
    enrollment_token_live_or_mint,
    enrollment_token_mint,
    imei_normalise,
)
from apps.devices.services.key_rotation import device_key_announce, lender_signing_key_rotate
from apps.devices.services.offline import (
    CodeIssue,
    offline_code_resend,
    offline_codes_bind_state,
    offline_codes_deliver,
    offline_codes_issue,
)
from apps.devices.services.push import (
    push_nudges_current_enqueue,
    push_nudges_enqueue,
    push_relay_run,
)
from apps.devices.services.state_writer import (
    StateChange,
    device_release,
    device_state_set,
    device_states_write,
    device_states_write_shown,
    state_reissue,
    state_write_locked,
)
from apps.devices.services.sync import devices_out_of_sync_record

__all__ = [
    "CheckIn",
    "CodeIssue",
    "Enrollment",
    "MintedToken",
    "SignedState",
    "StateChange",
    "device_ack",
    "device_authenticate",
    "device_check_in",
    "device_enroll",
    "device_event_report",
    "device_fcm_token_set",
    "device_key_announce",
    "device_register",
    "device_registrations_void",
    "device_release",
    "device_state_set",
    "device_states_write",
    "device_states_write_shown",
    "devices_out_of_sync_record",
    "enrollment_token_live_or_mint",
    "enrollment_token_mint",
    "imei_normalise",
    "lender_signing_key_rotate",
    "offline_code_resend",
    "offline_codes_bind_state",
    "offline_codes_deliver",
    "offline_codes_issue",
    "push_nudges_current_enqueue",
    "push_nudges_enqueue",
    "push_relay_run",
    "state_reissue",
    "state_write_locked",
]
