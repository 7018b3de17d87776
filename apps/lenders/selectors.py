from collections.abc import Iterable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.db.models import OuterRef, Prefetch, QuerySet
from django.utils import timezone, translation
from django.utils.text import get_text_list
from django.utils.translation import gettext

from apps.core.schedule import LenderClock
from apps.lenders.country_rules import APP_CATEGORIES, country_rule_for
from apps.lenders.errors import LenderNotFound
from apps.lenders.models import (
    Lender,
    LoanProduct,
    Membership,
    MessageTemplate,
    RestrictionPolicyVersion,
    RestrictionStage,
)


def lender_get(*, lender_id: int) -> Lender:
    return Lender.objects.get(pk=lender_id)


def lender_get_by_slug(*, slug: str) -> Lender:
    lender = Lender.objects.filter(slug=slug).first()
    if lender is None:
        raise LenderNotFound(slug=slug)
    return lender


def lender_clock_list() -> list[LenderClock]:
    """Every lender's id, slug and timezone: what the beat schedule is written from."""
    return [LenderClock(*row) for row in Lender.objects.values_list("pk", "slug", "timezone")]


def membership_get_for_user(*, user_id: int) -> Membership | None:
    return Membership.objects.select_related("lender").filter(user_id=user_id).first()


def lender_id_for_user(*, user_id: int) -> int | None:
    """The lender the user works for (None: a platform operator, or no membership)."""
    return Membership.objects.filter(user_id=user_id).values_list("lender_id", flat=True).first()


def lender_id_for_username(*, username: str) -> int | None:
    """``lender_id_for_user`` of the user called ``username`` (None when there is none)."""
    found = Membership.objects.filter(user__username=username)
    return found.values_list("lender_id", flat=True).first()


def restriction_policy_version_in_force(*, lender_id: int) -> RestrictionPolicyVersion | None:
    """The version a loan signed now pins: the latest version of the lender's active policy.

    None when the lender has no active policy. Stages come prefetched in order.
    """
    return (
        RestrictionPolicyVersion.objects.filter(lender_id=lender_id, policy__is_active=True)
        .select_related("policy")
        .prefetch_related(
            Prefetch("stages", queryset=RestrictionStage.objects.order_by("position"))
        )
        .order_by("-version")
        .first()
    )


def restriction_policy_version_list(*, lender_id: int) -> QuerySet[RestrictionPolicyVersion]:
    """Every version of the lender's policies, by policy name and version."""
    return (
        RestrictionPolicyVersion.objects.filter(lender_id=lender_id)
        .select_related("policy")
        .order_by("policy__name", "version")
    )


def restriction_stages_describe(*, version: RestrictionPolicyVersion, locale: str) -> list[str]:
    """Each stage of ``version`` in plain words, in ``locale``, for the consent page.

    One sentence per stage, in order; restrictive stages say what always works.
    """
    with translation.override(locale):
        return [_stage_describe(stage) for stage in version.stages.all()]


def _stage_describe(stage: RestrictionStage) -> str:
    action = RestrictionStage.Action
    always = gettext("Emergency calls, calls to the lender and payments always work.")
    params = {"day": stage.days_overdue}
    if stage.action == action.REMINDER:
        return gettext("From day %(day)s overdue: you get payment reminders on the phone.") % params
    if stage.action == action.WALLPAPER:
        return (
            gettext(
                "From day %(day)s overdue: the wallpaper and lock screen show a payment reminder."
            )
            % params
        )
    if stage.action == action.ALARM:
        times = get_text_list(list(stage.alarm_times), gettext("and"))
        return gettext(
            "From day %(day)s overdue: a reminder alarm rings at %(times)s, never on a Sunday "
            "or a public holiday."
        ) % {**params, "times": times}
    if stage.action == action.BLOCK_APPS:
        names = [str(APP_CATEGORIES.get(c, c)) for c in stage.blocked_categories]
        names += list(stage.blocked_packages)
        apps = get_text_list(names, gettext("and"))
        return (
            gettext("From day %(day)s overdue: %(apps)s are blocked.") % {**params, "apps": apps}
            + " "
            + always
        )
    return gettext("From day %(day)s overdue: the phone locks.") % params + " " + always


def lender_local_date(*, lender: Lender, at: datetime | None = None) -> date:
    """The lender's calendar date at ``at`` (now by default): due dates and days overdue use it."""
    return (at or timezone.now()).astimezone(ZoneInfo(lender.timezone)).date()


def lender_day_start(*, lender: Lender, day: date) -> datetime:
    """The instant ``day`` begins in the lender's timezone (midnight local, in UTC)."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(lender.timezone))


def loan_product_list_active(*, lender_id: int) -> QuerySet[LoanProduct]:
    """The products a clerk may sell for ``lender_id`` now."""
    return LoanProduct.objects.filter(lender_id=lender_id, is_active=True).order_by("name")


def restriction_stage_list(
    *, policy_version_ids: Iterable[int] | None = None, lender_id: int | None = None
) -> list[RestrictionStage]:
    """The stages of these policy versions, or of every version of ``lender_id``'s
    policies, each version's mildest first. One of the two is required."""
    if policy_version_ids is None and lender_id is None:
        raise TypeError("restriction_stage_list needs policy_version_ids or lender_id")
    stages = RestrictionStage.objects.all()
    if policy_version_ids is not None:
        stages = stages.filter(policy_version_id__in=list(policy_version_ids))
    if lender_id is not None:
        stages = stages.filter(policy_version__lender_id=lender_id)
    return list(stages.order_by("policy_version_id", "position"))


def restriction_steps_applicable(
    *, lender: Lender, policy_version_ids: Iterable[int] | None = None
) -> dict[int, list[RestrictionStage]]:
    """The stages a loan under each of ``policy_version_ids`` (or every version of the
    lender's policies) may reach, mildest first: those the lender's country allows, and no
    lock before the country's earliest lock day. The restriction ladder's steps, and the
    ladder a phone holds for offline unlock codes."""
    rule = country_rule_for(lender.country)
    ids = None if policy_version_ids is None else set(policy_version_ids)
    steps: dict[int, list[RestrictionStage]] = {pk: [] for pk in ids or ()}
    if ids is None:
        found = restriction_stage_list(lender_id=lender.pk)
    else:
        found = restriction_stage_list(policy_version_ids=ids)
    for stage in found:
        steps.setdefault(stage.policy_version_id, [])
        if stage.action not in rule.allowed_actions:
            continue
        lock = RestrictionStage.Action.LOCK
        if stage.action == lock and stage.days_overdue < (rule.earliest_lock_day or 0):
            continue
        steps[stage.policy_version_id].append(stage)
    return steps


def restriction_stage_list_taking(
    *, action: str, policy_version: int | OuterRef
) -> QuerySet[RestrictionStage]:
    """The stages of ``policy_version`` that take ``action``: a queryset, so a caller may
    use it as a subquery (``policy_version=OuterRef("policy_version")``)."""
    return RestrictionStage.objects.filter(policy_version=policy_version, action=action)


def message_template_newest(*, lender_id: int) -> QuerySet[MessageTemplate]:
    """The version in force of each kind and language the lender rewrote (one row each):
    the newest, read through the unique index on (lender, kind, language, version)."""
    return (
        MessageTemplate.objects.filter(lender_id=lender_id)
        .order_by("kind", "language", "-version")
        .distinct("kind", "language")
        .select_related("changed_by")
    )


def message_template_texts(*, lender_id: int) -> dict[tuple[str, str], str]:
    """``{(kind, language): text}`` of the versions in force, in one query."""
    return {
        (kind, language): text
        for kind, language, text in message_template_newest(lender_id=lender_id).values_list(
            "kind", "language", "text"
        )
    }


def message_template_history(
    *, lender_id: int, kind: str, language: str
) -> QuerySet[MessageTemplate]:
    """Every version of one kind and language, the newest first, with who wrote it."""
    return (
        MessageTemplate.objects.filter(lender_id=lender_id, kind=kind, language=language)
        .select_related("changed_by")
        .order_by("-version")
    )


def membership_list_all(*, limit: int) -> QuerySet[Membership]:
    """Every lender's back-office people, by lender and role: unscoped, for the demo's front
    door only (the demo shows whom to log in as)."""
    return Membership.objects.select_related("user", "lender").order_by(
        "lender__name", "role", "user__username"
    )[:limit]
