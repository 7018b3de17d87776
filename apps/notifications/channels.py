"""The customer's phone as a channel: which phones can take a notice now, and the push.

Delivering a notice through the phone needs ``apps.devices`` (the enrolled phone
of a loan, its push address, the nudge that makes it check in), which sits
above this app. ``devices`` installs its two functions here when Django starts
(``DevicesConfig.ready``); until then, and in a process without it, no phone
can be pushed and every message goes by SMS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


def _none_pushable(*, loan_ids: Iterable[int]) -> dict[int, int]:
    return {}


def _no_nudge(*, device_ids: list[int]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PhoneChannel:
    # loan id -> the loan's enrolled phone, for the phones that can be pushed now
    pushable: Callable[..., dict[int, int]] = _none_pushable
    # queue a push that makes each of these phones check in, in the caller's transaction
    nudge: Callable[..., None] = _no_nudge


_channel = PhoneChannel()


def phone_channel_install(channel: PhoneChannel) -> None:
    global _channel  # one channel per process, set once at startup
    _channel = channel


def phone_channel() -> PhoneChannel:
    return _channel
