from enum import StrEnum


class NotificationsAction(StrEnum):
    CONTACT_OPTED_OUT = "notifications.contact.opted_out"
    CONTACT_OPTED_IN = "notifications.contact.opted_in"
    VOICE_CALL_ANSWERED = "notifications.voice_call.answered"
