"""The customer's phone as a channel: which phones can take a notice now, and the push.

Delivering a notice through the phone needs ``apps.devices`` (the enrolled phone
of a loan, its push address, the nudge that makes it check in), which sits
above this app. ``devices`` installs its two functions here when Django starts
(``DevicesConfig.ready``). A process without them cannot deliver: asking for the
channel raises, rather than sending every message by SMS without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class PhoneChannelMissing(RuntimeError):
    """No phone channel installed: the devices app is not among the installed apps."""


@dataclass(frozen=True, slots=True)
class PhoneChannel:
    # loan id -> the loan's enrolled phone, for the phones that can be pushed now
    pushable: Callable[..., dict[int, int]]
    # queue a push that makes each of these phones check in, in the caller's transaction
    nudge: Callable[..., None]


_channel: PhoneChannel | None = None


def phone_channel_install(channel: PhoneChannel) -> None:
    global _channel  # one channel per process, set once at startup
    _channel = channel


def phone_channel() -> PhoneChannel:
    if _channel is None:
        raise PhoneChannelMissing("apps.devices installs the phone channel in its ready()")
    return _channel
