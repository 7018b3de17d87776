"""Restriction policies made through the service: the standard ladder, with some stages changed."""

from dataclasses import replace

from apps.core.actor import Actor
from apps.lenders.models import Lender
from apps.lenders.services import StageSpec, default_stages, restriction_policy_create

REMINDER, WALLPAPER, ALARM, BLOCK_APPS, LOCK = 0, 1, 2, 3, 4  # positions in default_stages


def create(lender: Lender, stages: list[StageSpec], name: str = "Standard"):
    return restriction_policy_create(lender=lender, name=name, stages=stages, actor=Actor.system())


def ladder(**changes: dict[str, object]) -> list[StageSpec]:
    """The standard English ladder with some stages changed: ``ladder(s2={"alarm_times": ()})``."""
    stages = default_stages("en")
    for key, fields in changes.items():
        index = int(key[1:])
        stages[index] = replace(stages[index], **fields)
    return stages
