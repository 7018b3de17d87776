"""The audit recorder's port: how the apps below ``audit`` record their changes.

``accounts`` and ``lenders`` sit below ``audit`` (the chain belongs to a lender), yet every
change they make writes an audit event in the same transaction. They call ``audit_record``
here; the audit app installs its recorder when Django starts (``AuditConfig.ready``), and the
recorder appends the event in the caller's transaction exactly as
``apps.audit.services.audit_event_record`` does (``tests/core/test_audit.py``).
Apps above ``audit`` call its services directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from django.db import models

from apps.core.actor import Actor


class AuditRecorder(Protocol):
    def record(
        self,
        *,
        actor: Actor,
        action: str,
        target: models.Model | None,
        lender_id: int | None,
        data: dict[str, Any] | None,
        reason: str,
    ) -> None:
        """Append one event in the caller's transaction (refused outside one)."""
        ...

    def recorded_since(
        self,
        *,
        action: str,
        since: datetime,
        target_id: str | None,
        data: Mapping[str, str] | None,
    ) -> bool:
        """Whether an event ``action`` was recorded at or after ``since``, about ``target_id``
        if given, whose data holds each of ``data``'s keys with that value if given."""
        ...


class AuditRecorderMissing(RuntimeError):
    """No recorder installed: the audit app is not among the installed apps."""


_recorder: AuditRecorder | None = None


def audit_recorder_install(recorder: AuditRecorder) -> None:
    global _recorder  # one recorder per process, set once at startup
    _recorder = recorder


def _installed() -> AuditRecorder:
    if _recorder is None:
        raise AuditRecorderMissing("apps.audit installs the audit recorder in its ready()")
    return _recorder


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    lender_id: int | None = None,
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Append one event to its lender's chain (``lender_id``, else the target's own lender,
    else the platform chain) in the caller's transaction."""
    _installed().record(
        actor=actor, action=action, target=target, lender_id=lender_id, data=data, reason=reason
    )


def audit_recorded_since(
    *,
    action: str,
    since: datetime,
    target_id: str | None = None,
    data: Mapping[str, str] | None = None,
) -> bool:
    """Whether such an event was recorded since ``since`` (``AuditRecorder.recorded_since``)."""
    return _installed().recorded_since(action=action, since=since, target_id=target_id, data=data)


# Called after events are appended, in the appending transaction, with the chain's lender
# and the actions appended: how a layer above ``audit`` follows the chain without the audit
# app knowing it (the webhooks' dispatcher is nudged this way).
AppendListener = Callable[[int | None, Sequence[str]], None]
_listeners: list[AppendListener] = []


def audit_append_listen(listener: AppendListener) -> None:
    """Call ``listener(lender_id, actions)`` after every append (installed once, at startup)."""
    if listener not in _listeners:
        _listeners.append(listener)


def audit_appended(*, lender_id: int | None, actions: Sequence[str]) -> None:
    """Tell the listeners that ``actions`` were appended to ``lender_id``'s chain."""
    for listener in _listeners:
        listener(lender_id, actions)
