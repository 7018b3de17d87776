from enum import StrEnum


class DevicesAction(StrEnum):
    DEVICE_REGISTERED = "devices.device.registered"
    ENROLLMENT_CODE_MINTED = "devices.enrollment_token.minted"
    DEVICE_ENROLLED = "devices.device.enrolled"
    DEVICE_VOIDED = "devices.device.voided"
    ENROLLMENT_REFUSED = "devices.enrollment.refused"
    STATE_CHANGED = "devices.state.changed"
    STATE_REFUSED = "devices.state.refused"
    STATE_ACKNOWLEDGED = "devices.state.acknowledged"
    STATE_FAILED = "devices.state.failed"
    SIM_CHANGED = "devices.device.sim_changed"
    OUT_OF_SYNC = "devices.device.out_of_sync"
    EVENT_REPORTED = "devices.device.event_reported"
    PUSH_ADDRESS_CHANGED = "devices.device.fcm_token_changed"
    PUSH_ADDRESS_DEAD = "devices.device.fcm_token_dead"
    LENDER_KEY_ROTATED = "devices.lender_key.rotated"
    OFFLINE_CODE_ISSUED = "devices.offline_code.issued"
    OFFLINE_CODE_RESENT = "devices.offline_code.resent"
