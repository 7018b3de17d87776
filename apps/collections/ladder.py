"""The restriction ladder: the stages a lender may apply, per pinned policy version, filtered
by the country's rules, and what a phone shows at each (its level, texts and offline fallback).

The sweep's SQL classifies with the same ladder (``Ladder.sql_params``); ``Ladder.stage_for``
is that rule for one loan, the oracle the property tests hold the SQL to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from apps.collections.models import STAGE_ORDER, Stage
from apps.devices.desired_state import OFFLINE_LEASE
from apps.devices.services import StateChange
from apps.lenders.country_rules import NOTICE_ACTIONS
from apps.lenders.models import Lender, RestrictionStage
from apps.lenders.selectors import restriction_steps_applicable
from apps.notifications.messages import NextStep

Action = RestrictionStage.Action


def rank(stage: str) -> int:
    return STAGE_ORDER.index(stage)


@dataclass(frozen=True, slots=True)
class Ladder:
    """The stages a lender may apply, per pinned policy version, mildest first."""

    stages: dict[int, list[RestrictionStage]]
    # what phones show, each distinct content once, and its index by (policy version, stage,
    # fallback stage, locale): a sweep gives thousands of phones a handful of them
    contents: list[StateChange] = field(default_factory=list)
    content_of: dict[tuple[int, str, str, str], int] = field(default_factory=dict)
    # and by what decides it (policy version, stage, days, paused, locale): one lookup a phone
    index_of: dict[tuple[int, str, int, bool, str, int, bool], int] = field(default_factory=dict)

    @classmethod
    def load(cls, *, lender: Lender, policy_version_ids: set[int] | None = None) -> Ladder:
        """The ladders of ``policy_version_ids``, or of every policy version of the lender."""
        return cls(
            restriction_steps_applicable(lender=lender, policy_version_ids=policy_version_ids)
        )

    def sql_params(self) -> dict[str, list[Any]]:
        rows = [(pv, s.days_overdue, s.action) for pv, ss in self.stages.items() for s in ss]
        return {
            "pv": [r[0] for r in rows],
            "days": [r[1] for r in rows],
            "actions": [r[2] for r in rows],
        }

    def stage_for(
        self,
        *,
        policy_version_id: int,
        days: int,
        paused: bool = False,
        noticed: int | None = None,
    ) -> str:
        """The stage a loan ``days`` overdue is at (the SQL's rule, for one loan): with
        ``noticed`` (the rank of the harshest stage its customer was told of in time), a stage
        that blocks apps or locks only if told of."""
        stage = Stage.NONE.value
        for step in self.stages.get(policy_version_id, []):
            untold = noticed is not None and step.action in NOTICE_ACTIONS
            if untold and rank(step.action) > noticed:  # type: ignore[operator]  # untold: set
                continue
            if days > 0 and step.days_overdue <= days:
                stage = step.action
        if paused and rank(stage) > rank(Stage.REMINDER):
            return Stage.REMINDER.value
        return stage

    def next_step(
        self,
        *,
        policy_version_id: int,
        stage: str,
        days: int,
        paused: bool,
        today: date,
        notice_days: int,
        noticed: dict[str, date] | None = None,
    ) -> NextStep | None:
        """The next stage a loan at ``stage``, ``days`` overdue, reaches if nothing is paid,
        and the date; None if none (the last stage reached, or a pause holds the ladder).

        A loan below its ladder's step (held for a notice, or lifted) reaches that step at
        the next sweep; otherwise the next step on its day. A step that blocks apps or locks
        comes no earlier than its notice allows: ``noticed`` (stage -> the first date a
        confirmed notice allows it), else ``notice_days`` after ``today`` (a notice sent
        now)."""
        if paused:
            return None
        wanted = self.stage_for(policy_version_id=policy_version_id, days=days)
        step, on = None, today
        if rank(wanted) > rank(stage):
            step, on = wanted, today + timedelta(days=1)
        else:
            following = [s for s in self.stages.get(policy_version_id, []) if s.days_overdue > days]
            if following:
                step = following[0].action
                on = today + timedelta(days=following[0].days_overdue - days)
        if step is None:
            return None
        if step in NOTICE_ACTIONS:
            allowed = (noticed or {}).get(step) or today + timedelta(days=notice_days)
            on = max(on, allowed)
        return NextStep(stage=step, on=on)

    def content_index(
        self,
        *,
        policy_version_id: int,
        stage: str,
        days: int,
        paused: bool,
        locale: str,
        noticed: int = 0,
        hold: bool = False,
    ) -> int:
        """The index in ``contents`` of what a phone shows at ``stage``: each stage keeps the
        milder ones' effects. Its offline fallback (what the phone applies when its lease ends
        without a check-in) is the stage the loan reaches by then, never a block or a lock its
        customer was not told of (``noticed``, a rank), and ``stage`` itself with ``hold`` (a
        suspension: nothing new, offline either)."""
        decided_by = (policy_version_id, stage, days, paused, locale, noticed, hold)
        index = self.index_of.get(decided_by)
        if index is None:
            index = self.index_of[decided_by] = self._content_index(*decided_by)
        return index

    def _content_index(
        self,
        policy_version_id: int,
        stage: str,
        days: int,
        paused: bool,
        locale: str,
        noticed: int,
        hold: bool,
    ) -> int:
        lease_days = OFFLINE_LEASE.days
        fallback = (
            Stage.NONE.value
            if days == 0
            else self.stage_for(
                policy_version_id=policy_version_id,
                days=days + lease_days,
                paused=paused,
                noticed=noticed,
            )
        )
        if hold:
            fallback = stage
        key = (policy_version_id, stage, fallback, locale)
        index = self.content_of.get(key)
        if index is None:
            self.contents.append(
                self._shown(
                    policy_version_id=policy_version_id,
                    stage=stage,
                    fallback=fallback,
                    locale=locale,
                )
            )
            index = self.content_of[key] = len(self.contents) - 1
        return index

    def _shown(
        self, *, policy_version_id: int, stage: str, fallback: str, locale: str
    ) -> StateChange:
        reached = [
            s for s in self.stages.get(policy_version_id, []) if rank(s.action) <= rank(stage)
        ]
        text = ""
        for step in reached:
            text = step.messages.get(locale) or step.messages.get("en") or text
        alarms = sorted({t for s in reached if s.action == Action.ALARM for t in s.alarm_times})
        packages = {p for s in reached if s.action == Action.BLOCK_APPS for p in s.blocked_packages}
        categories = {
            c for s in reached if s.action == Action.BLOCK_APPS for c in s.blocked_categories
        }
        return StateChange(
            device_id=0,
            level=stage_level(stage),
            locale=locale,
            wallpaper_text=text if rank(stage) >= rank(Stage.WALLPAPER) else "",
            lock_screen_text=text if stage == Stage.LOCK else "",
            blocked_packages=tuple(sorted(packages)),
            blocked_categories=tuple(sorted(categories)),
            alarm_times=tuple(alarms) if rank(stage) >= rank(Stage.ALARM) else (),
            fallback_level=stage_level(fallback),
        )


def stage_level(stage: str) -> str:
    """A loan stage as a phone's level (``none`` is ``normal`` on the phone)."""
    return "normal" if stage == Stage.NONE else stage
