"""Writes for lenders, their back-office memberships, products and restriction policies."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone as django_timezone
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.crypto import KeyGenerator

from apps.accounts.models import User
from apps.core.actor import Actor
from apps.core.audit import audit_record
from apps.core.money import quantize
from apps.core.schedule import periodic_tasks_sync
from apps.core.sql import select_rows
from apps.lenders.country_rules import (
    APP_CATEGORIES,
    CountryRule,
    always_allowed_packages,
    country_rule_for,
)
from apps.lenders.errors import (
    ApiKeyNotFound,
    LenderSlugTaken,
    RestrictionPolicyNotActive,
    UserAlreadyMember,
)
from apps.lenders.events import LendersAction
from apps.lenders.messages import KINDS, default_text, message_language, message_text_check
from apps.lenders.models import (
    ApiKey,
    Lender,
    LoanProduct,
    Membership,
    MessageTemplate,
    RestrictionPolicy,
    RestrictionPolicyVersion,
    RestrictionStage,
)
from apps.lenders.selectors import lender_clock_list
from apps.lenders.sql import API_KEY_BY_PREFIX


@transaction.atomic
def lender_create(
    *, name: str, slug: str, country: str, currency: str, timezone: str, locale: str, actor: Actor
) -> Lender:
    """Create a lender and open its audit chain; its morning restriction sweep joins the beat
    schedule. Emits ``lenders.lender.created``."""
    lender = Lender(
        name=name, slug=slug, country=country, currency=currency, timezone=timezone, locale=locale
    )
    lender.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            lender.save(force_insert=True)
    except IntegrityError as exc:
        raise LenderSlugTaken(slug=slug) from exc
    audit_record(
        actor=actor,
        action=LendersAction.LENDER_CREATED,
        target=lender,
        data={
            "new": {
                "name": name,
                "slug": slug,
                "country": country,
                "currency": currency,
                "timezone": timezone,
                "locale": locale,
            }
        },
    )
    periodic_tasks_sync(lenders=lender_clock_list())
    return lender


@transaction.atomic
def agent_create(
    *,
    lender: Lender,
    username: str,
    email: str,
    password: str,
    role: Membership.Role,
    actor: Actor,
) -> User:
    """Create a back-office user of ``lender`` with ``role``.

    The user is staff (the admin is the back office) but never a superuser; they
    set up two-factor login at their first sign-in. Emits
    ``lenders.membership.created``.
    """
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=True, is_active=True)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return membership_create(user=user, lender=lender, role=role, actor=actor)


@transaction.atomic
def membership_create(*, user: User, lender: Lender, role: Membership.Role, actor: Actor) -> User:
    membership = Membership(user=user, lender=lender, role=role)
    membership.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            membership.save(force_insert=True)
    except IntegrityError as exc:
        raise UserAlreadyMember(user_id=user.pk) from exc
    audit_record(
        actor=actor,
        action=LendersAction.MEMBERSHIP_CREATED,
        target=membership,
        data={"new": {"user_id": user.pk, "role": str(role)}},
    )
    return user


_PRODUCT_TERMS = (
    "name",
    "installments",
    "frequency",
    "min_down_payment_percent",
    "interest_method",
    "interest_rate_percent",
    "origination_fee_percent",
    "late_fee_type",
    "late_fee_value",
    "late_fee_cap",
    "grace_days",
    "is_active",
)


@transaction.atomic
def loan_product_save(*, product: LoanProduct, actor: Actor) -> LoanProduct:
    """Create or change a loan product after validating its terms as a whole.

    Signed loans copied their terms, so a change affects new sales only.
    Emits ``lenders.loan_product.created`` or ``lenders.loan_product.changed``
    with the old and new value of each changed term.
    """
    product.full_clean()
    currency = Lender.objects.values_list("currency", flat=True).get(pk=product.lender_id)
    money_terms = {"late_fee_cap": product.late_fee_cap}
    if product.late_fee_type == LoanProduct.LateFeeType.FIXED:
        money_terms["late_fee_value"] = product.late_fee_value
    for term, value in money_terms.items():
        if value is not None and quantize(value, currency) != value:
            raise ValidationError(
                {
                    term: _("Use at most the currency's minor unit (%(currency)s).")
                    % {"currency": currency}
                }
            )
    old = (
        LoanProduct.objects.select_for_update()
        .filter(pk=product.pk)
        .values(*_PRODUCT_TERMS)
        .first()
        if product.pk
        else None
    )
    product.save()
    new = {field: getattr(product, field) for field in _PRODUCT_TERMS}
    if old is None:
        action, data = LendersAction.LOAN_PRODUCT_CREATED, {"new": new}
    else:
        diff = _changes(old, new)
        if diff is None:
            return product
        action, data = LendersAction.LOAN_PRODUCT_CHANGED, diff
    audit_record(actor=actor, action=action, target=product, data=data)
    return product


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"old": ..., "new": ...}`` of the fields whose value differs, the data of a change's
    audit event; None when nothing changed."""
    changed = [name for name in new if old[name] != new[name]]
    if not changed:
        return None
    return {"old": {n: old[n] for n in changed}, "new": {n: new[n] for n in changed}}


# the settings a lender's admin changes on the lender itself
_LENDER_SETTINGS = ("emergency_grace_hours", "message_channels")


@transaction.atomic
def lender_settings_save(*, lender: Lender, actor: Actor) -> Lender:
    """Save the lender's own settings (``_LENDER_SETTINGS``) after validating them; nothing
    else of the lender is written. Phones receive a new emergency grace with their next
    state. Emits ``lenders.lender.settings_changed`` with the old and new value of each."""
    lender.full_clean()
    old = Lender.objects.select_for_update().values(*_LENDER_SETTINGS).get(pk=lender.pk)
    diff = _changes(old, {name: getattr(lender, name) for name in _LENDER_SETTINGS})
    if diff is None:
        return lender
    Lender.objects.filter(pk=lender.pk).update(**diff["new"])
    audit_record(
        actor=actor, action=LendersAction.LENDER_SETTINGS_CHANGED, target=lender, data=diff
    )
    return lender


@transaction.atomic
def message_template_save(
    *, lender_id: int, kind: str, language: str, text: str, user: User | None, actor: Actor
) -> MessageTemplate | None:
    """Put ``text`` in force as the lender's message of ``kind`` in ``language``: a new
    version, numbered after the newest, the older ones kept. Checked first
    (``message_text_check``: placeholders, braces, length on its channel). A text equal to
    the one in force (the lender's, else the shipped one) writes nothing and returns None.

    Locks the lender, so two admins saving at once number their versions one after the
    other. Emits ``lenders.message_template.changed`` with the old and new text.
    """
    if kind not in KINDS:
        raise ValidationError({"kind": _("No such kind of message.")}, code="unknown_kind")
    if language != message_language(language):
        raise ValidationError({"language": _("No such language.")}, code="unknown_language")
    lender = Lender.objects.select_for_update().get(pk=lender_id)
    text = text.strip().replace("\r\n", "\n")
    message_text_check(lender=lender, kind=kind, language=language, text=text)
    newest = (
        MessageTemplate.objects.filter(lender=lender, kind=kind, language=language)
        .order_by("-version")
        .first()
    )
    old = newest.text if newest is not None else default_text(kind, language)
    if text == old:
        return None
    template = MessageTemplate(
        lender=lender,
        kind=kind,
        language=language,
        version=newest.version + 1 if newest is not None else 1,
        text=text,
        changed_by=user,
    )
    template.full_clean(validate_unique=False)
    template.save(force_insert=True)
    audit_record(
        actor=actor,
        action=LendersAction.MESSAGE_TEMPLATE_CHANGED,
        target=template,
        data={
            "kind": kind,
            "language": language,
            "version": template.version,
            "old": {"text": old},
            "new": {"text": text},
        },
    )
    return template


# --- restriction policies ---------------------------------------------------

Action = RestrictionStage.Action

MAX_STAGES = 10
MAX_ALARM_TIMES = 3
MAX_MESSAGE_LENGTH = 300
MAX_BLOCKED_PACKAGES = 50
# Stages that put text in front of the customer must have it in the lender's language.
_NEEDS_MESSAGE = frozenset({Action.REMINDER, Action.WALLPAPER, Action.LOCK})
# Java package naming as Android enforces it: two or more dot-separated segments.
_PACKAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
_LOCAL_TIME = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage as a caller asks for it; the services validate the whole ladder.

    ``messages`` maps a language code to text; ``alarm_times`` are local
    ``"HH:MM"`` strings (alarm stages only); packages and categories are for
    ``block_apps`` stages only.
    """

    days_overdue: int
    action: str
    messages: Mapping[str, str] = field(default_factory=dict)
    alarm_times: Sequence[str] = ()
    blocked_packages: Sequence[str] = ()
    blocked_categories: Sequence[str] = ()


def default_stages(locale: str, *, country: str | None = None) -> list[StageSpec]:
    """The standard ladder: reminder day 1, wallpaper day 3, alarms day 7,
    social apps blocked day 14, lock day 30.

    With ``country``, stages the country forbids are left out and the lock
    moves to the country's earliest lock day when that is later, so the
    ladder validates for a lender there. Messages are written in ``locale``.
    """
    with translation.override(locale):
        ladder = [
            StageSpec(
                days_overdue=1,
                action=Action.REMINDER,
                messages={
                    locale: gettext(
                        "Your installment is overdue. Please pay to keep full use of your phone."
                    )
                },
            ),
            StageSpec(
                days_overdue=3,
                action=Action.WALLPAPER,
                messages={locale: gettext("Payment overdue. Pay now to remove this reminder.")},
            ),
            StageSpec(
                days_overdue=7,
                action=Action.ALARM,
                alarm_times=("09:00", "18:00"),
                messages={locale: gettext("Reminder: your installment is overdue.")},
            ),
            StageSpec(days_overdue=14, action=Action.BLOCK_APPS, blocked_categories=("social",)),
            StageSpec(
                days_overdue=30,
                action=Action.LOCK,
                messages={
                    locale: gettext(
                        "This phone is locked because a payment is overdue. Pay to unlock it. "
                        "Emergency calls still work."
                    )
                },
            ),
        ]
    if country is None:
        return ladder
    rule = country_rule_for(country)
    fitted = []
    for spec in ladder:
        if spec.action not in rule.allowed_actions:
            continue
        if spec.action == Action.LOCK and rule.earliest_lock_day is not None:
            spec = replace(spec, days_overdue=max(spec.days_overdue, rule.earliest_lock_day))
        fitted.append(spec)
    return fitted


Errors = dict[str, list[ValidationError]]


def _add(errors: Errors, key: str, message: Any, code: str, **params: Any) -> None:
    errors.setdefault(key, []).append(ValidationError(message, code=code, params=params or None))


def _string_list(value: object) -> list[str] | None:
    """``value`` as a list of strings, or None when it is not a list or tuple of strings."""
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _parse_local_time(value: str) -> time | None:
    if not _LOCAL_TIME.match(value):
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _stage_build(
    *, spec: StageSpec, index: int, lender: Lender, rule: CountryRule, errors: Errors
) -> RestrictionStage | None:
    """Check one stage on its own and against the lender's country; None if it is invalid."""
    key = f"stages.{index}"
    before = sum(len(v) for v in errors.values())
    country = lender.country

    if spec.action not in Action.values:
        _add(
            errors,
            f"{key}.action",
            _("“%(value)s” is not a restriction action."),
            "invalid_action",
            value=spec.action,
        )
        return None
    action = Action(spec.action)
    days: object = spec.days_overdue  # as sent: the API and the admin pass JSON through
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
        _add(
            errors,
            f"{key}.days_overdue",
            _("A stage starts between day 1 and day 365 overdue."),
            "days_out_of_range",
        )
    if action not in rule.allowed_actions:
        _add(
            errors,
            f"{key}.action",
            _("%(action)s is not allowed for lenders in %(country)s."),
            "action_forbidden_in_country",
            action=action.label,
            country=country,
        )
    elif (
        action == Action.LOCK
        and rule.earliest_lock_day is not None
        and isinstance(days, int)
        and days < rule.earliest_lock_day
    ):
        _add(
            errors,
            f"{key}.days_overdue",
            _("In %(country)s a phone may be locked from day %(day)s overdue at the earliest."),
            "lock_too_early",
            country=country,
            day=rule.earliest_lock_day,
        )

    messages = _messages_check(spec=spec, action=action, key=key, lender=lender, errors=errors)
    alarm_times = _alarm_times_check(
        spec=spec, action=action, key=key, lender=lender, rule=rule, errors=errors
    )
    packages, categories = _blocked_check(spec=spec, action=action, key=key, errors=errors)

    if sum(len(v) for v in errors.values()) != before:
        return None
    return RestrictionStage(
        lender=lender,
        position=index + 1,
        days_overdue=spec.days_overdue,
        action=action.value,
        messages=messages,
        alarm_times=alarm_times,
        blocked_packages=packages,
        blocked_categories=categories,
    )


def _messages_check(
    *, spec: StageSpec, action: Action, key: str, lender: Lender, errors: Errors
) -> dict[str, str]:
    field_key = f"{key}.messages"
    if not isinstance(spec.messages, Mapping):
        _add(errors, field_key, _("Messages are text per language code."), "invalid_messages")
        return {}
    languages = {code for code, _name in settings.LANGUAGES}
    messages: dict[str, str] = {}
    sent: Mapping[str, object] = spec.messages  # as sent: checked below
    for locale, text in sent.items():
        if locale not in languages:
            _add(
                errors,
                field_key,
                _("“%(locale)s” is not a language we support."),
                "unknown_locale",
                locale=locale,
            )
        elif not isinstance(text, str) or not text.strip():
            _add(
                errors,
                field_key,
                _("The %(locale)s message is empty."),
                "empty_message",
                locale=locale,
            )
        elif len(text.strip()) > MAX_MESSAGE_LENGTH:
            _add(
                errors,
                field_key,
                _("The %(locale)s message is longer than %(limit)s characters."),
                "message_too_long",
                locale=locale,
                limit=MAX_MESSAGE_LENGTH,
            )
        else:
            messages[locale] = text.strip()
    if action in _NEEDS_MESSAGE and not (spec.messages or {}).get(lender.locale):
        _add(
            errors,
            field_key,
            _("This stage needs a message in %(locale)s, the lender's language."),
            "message_required",
            locale=lender.locale,
        )
    return messages


def _alarm_times_check(
    *,
    spec: StageSpec,
    action: Action,
    key: str,
    lender: Lender,
    rule: CountryRule,
    errors: Errors,
) -> list[str]:
    field_key = f"{key}.alarm_times"
    values = _string_list(spec.alarm_times)
    if values is None:
        _add(errors, field_key, _("Alarm times are a list of HH:MM times."), "invalid_alarm_times")
        return []
    if action != Action.ALARM:
        if values:
            _add(
                errors,
                field_key,
                _("Only an alarm stage has alarm times."),
                "alarm_times_unexpected",
            )
        return []
    if not 1 <= len(values) <= MAX_ALARM_TIMES:
        _add(
            errors,
            field_key,
            _("An alarm stage needs one to %(limit)s alarm times."),
            "alarm_times_count",
            limit=MAX_ALARM_TIMES,
        )
    if len(set(values)) != len(values):
        _add(errors, field_key, _("Alarm times must differ."), "alarm_times_repeated")
    start, end = rule.contact_hours
    for value in values:
        parsed = _parse_local_time(value)
        if parsed is None:
            _add(
                errors,
                field_key,
                _("“%(value)s” is not a time of day as HH:MM."),
                "invalid_alarm_time",
                value=value,
            )
        elif not start <= parsed < end:
            _add(
                errors,
                field_key,
                _("%(value)s is outside the contact hours in %(country)s (%(start)s to %(end)s)."),
                "alarm_outside_contact_hours",
                value=value,
                country=lender.country,
                start=start.strftime("%H:%M"),
                end=end.strftime("%H:%M"),
            )
    return sorted(values)


def _blocked_check(
    *, spec: StageSpec, action: Action, key: str, errors: Errors
) -> tuple[list[str], list[str]]:
    packages = _string_list(spec.blocked_packages)
    categories = _string_list(spec.blocked_categories)
    if packages is None:
        _add(
            errors,
            f"{key}.blocked_packages",
            _("Blocked packages are a list of package names."),
            "invalid_blocked_packages",
        )
    if categories is None:
        _add(
            errors,
            f"{key}.blocked_categories",
            _("Blocked categories are a list of category names."),
            "invalid_blocked_categories",
        )
    if packages is None or categories is None:
        return [], []
    if action != Action.BLOCK_APPS:
        for name, values in (("blocked_packages", packages), ("blocked_categories", categories)):
            if values:
                _add(
                    errors,
                    f"{key}.{name}",
                    _("Only a block_apps stage blocks apps."),
                    "blocking_unexpected",
                )
        return [], []
    if not packages and not categories:
        _add(
            errors,
            f"{key}.blocked_packages",
            _("Name at least one app package or category to block."),
            "nothing_blocked",
        )
    if len(packages) > MAX_BLOCKED_PACKAGES:
        _add(
            errors,
            f"{key}.blocked_packages",
            _("Block at most %(limit)s packages by name."),
            "too_many_packages",
            limit=MAX_BLOCKED_PACKAGES,
        )
    always_allowed = always_allowed_packages()
    for package in packages:
        if not _PACKAGE_NAME.match(package):
            _add(
                errors,
                f"{key}.blocked_packages",
                _("“%(value)s” is not an Android package name."),
                "invalid_package",
                value=package,
            )
        elif package in always_allowed:
            _add(
                errors,
                f"{key}.blocked_packages",
                _(
                    "%(value)s cannot be blocked: emergency calls, the dialer, the payment path "
                    "and the agent always work."
                ),
                "package_always_allowed",
                value=package,
            )
    for category in categories:
        if category not in APP_CATEGORIES:
            _add(
                errors,
                f"{key}.blocked_categories",
                _("“%(value)s” is not an app category we know. Choose from: %(known)s."),
                "unknown_category",
                value=category,
                known=", ".join(APP_CATEGORIES),
            )
    return sorted(set(packages)), sorted(set(categories))


def _ladder_check(*, stages: list[RestrictionStage], errors: Errors) -> None:
    """The rules across stages: days up, never milder, lock last, one alarm stage."""
    for previous, stage in pairwise(stages):
        if stage.days_overdue <= previous.days_overdue:
            _add(
                errors,
                "stages",
                _(
                    "Day thresholds must strictly increase: day %(day)s comes after day %(previous)s."
                ),
                "days_not_increasing",
                day=stage.days_overdue,
                previous=previous.days_overdue,
            )
        if Action(stage.action).severity < Action(previous.action).severity:
            _add(
                errors,
                "stages",
                _("Stages must not get milder: “%(action)s” comes after “%(previous)s”."),
                "severity_decreasing",
                action=stage.get_action_display(),
                previous=previous.get_action_display(),
            )
    if any(stage.action == Action.LOCK for stage in stages[:-1]):
        _add(errors, "stages", _("The lock must be the last stage."), "lock_not_last")
    if sum(stage.action == Action.ALARM for stage in stages) > 1:
        _add(errors, "stages", _("A policy has at most one alarm stage."), "alarm_repeated")


def _stages_build(
    *, lender: Lender, stages: Sequence[StageSpec], errors: Errors
) -> list[RestrictionStage]:
    """Unsaved stages for ``lender`` from ``stages``, with every problem added to ``errors``."""
    if not stages:
        _add(errors, "stages", _("A policy needs at least one stage."), "no_stages")
        return []
    if len(stages) > MAX_STAGES:
        _add(
            errors,
            "stages",
            _("A policy has at most %(limit)s stages."),
            "too_many_stages",
            limit=MAX_STAGES,
        )
        return []
    rule = country_rule_for(lender.country)
    built = [
        _stage_build(spec=spec, index=index, lender=lender, rule=rule, errors=errors)
        for index, spec in enumerate(stages)
    ]
    valid = [stage for stage in built if stage is not None]
    if len(valid) == len(built):
        _ladder_check(stages=valid, errors=errors)
    return valid


def restriction_stages_draft(
    *, lender: Lender, stages: Sequence[StageSpec]
) -> list[RestrictionStage]:
    """The stages a new version made of ``stages`` would have, checked as publishing checks
    them, and not saved: a draft to try before it is published (the sweep's what-if).
    Raises ``ValidationError`` as ``restriction_policy_version_create`` would."""
    errors: Errors = {}
    built = _stages_build(lender=lender, stages=stages, errors=errors)
    if errors:
        raise ValidationError(errors)
    return built


def _stage_data(stage: RestrictionStage) -> dict[str, Any]:
    return {
        "position": stage.position,
        "days_overdue": stage.days_overdue,
        "action": stage.action,
        "messages": stage.messages,
        "alarm_times": stage.alarm_times,
        "blocked_packages": stage.blocked_packages,
        "blocked_categories": stage.blocked_categories,
    }


def _version_add(
    *, policy: RestrictionPolicy, number: int, stages: list[RestrictionStage], actor: Actor
) -> RestrictionPolicyVersion:
    version = RestrictionPolicyVersion(lender_id=policy.lender_id, policy=policy, version=number)
    version.full_clean()
    version.save(force_insert=True)
    for stage in stages:
        stage.policy_version = version
        stage.full_clean()
        stage.save(force_insert=True)
    audit_record(
        actor=actor,
        action=LendersAction.RESTRICTION_POLICY_VERSION_CREATED,
        target=version,
        data={
            "new": {
                "policy_id": policy.pk,
                "policy_name": policy.name,
                "version": number,
                "stages": [_stage_data(stage) for stage in stages],
            }
        },
    )
    return version


@transaction.atomic
def restriction_policy_create(
    *, lender: Lender, name: str, stages: Sequence[StageSpec], actor: Actor
) -> RestrictionPolicyVersion:
    """Create a policy with its first version and make it the lender's active policy.

    The lender's previous active policy is deactivated: loans already signed
    keep the version they pinned, new loans get this one. Invalid input raises
    ``ValidationError`` keyed by field (``name``, ``stages``,
    ``stages.<index>.<field>``) and stores nothing.
    Locks: the Lender (serialises policy changes per lender), then its active policy.
    Emits ``lenders.restriction_policy.deactivated`` for the replaced policy, if
    any, and ``lenders.restriction_policy.version_created``.
    """
    lender = Lender.objects.select_for_update().get(pk=lender.pk)
    policy = RestrictionPolicy(lender=lender, name=name, is_active=True)
    errors: Errors = {}
    try:
        # The one-active-policy constraint is checked below, once the
        # previous policy is deactivated.
        policy.full_clean(validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.error_dict)
    built = _stages_build(lender=lender, stages=stages, errors=errors)
    if errors:
        raise ValidationError(errors)

    previous = RestrictionPolicy.objects.select_for_update().filter(lender=lender, is_active=True)
    for replaced in previous:
        replaced.is_active = False
        replaced.save(update_fields=["is_active", "updated_at"])
        audit_record(
            actor=actor,
            action=LendersAction.RESTRICTION_POLICY_DEACTIVATED,
            target=replaced,
            data={"old": {"is_active": True}, "new": {"is_active": False}},
        )
    policy.full_clean()
    policy.save(force_insert=True)
    return _version_add(policy=policy, number=1, stages=built, actor=actor)


@transaction.atomic
def restriction_policy_version_create(
    *, policy: RestrictionPolicy, stages: Sequence[StageSpec], actor: Actor
) -> RestrictionPolicyVersion:
    """Add the next version of an active policy; earlier versions stay as they were.

    Versions are never edited, so loans pinned to an earlier version keep it.
    Locks: the policy row, so two editors get consecutive version numbers.
    Raises ``RestrictionPolicyNotActive`` for a replaced policy and
    ``ValidationError`` for invalid stages. Emits
    ``lenders.restriction_policy.version_created``.
    """
    policy = (
        RestrictionPolicy.objects.select_for_update(of=("self",))
        .select_related("lender")
        .get(pk=policy.pk)
    )
    if not policy.is_active:
        raise RestrictionPolicyNotActive(policy_id=policy.pk)
    errors: Errors = {}
    built = _stages_build(lender=policy.lender, stages=stages, errors=errors)
    if errors:
        raise ValidationError(errors)
    last = policy.versions.aggregate(last=Max("version"))["last"] or 0
    return _version_add(policy=policy, number=last + 1, stages=built, actor=actor)


# --- API keys -------------------------------------------------------------------------------
# The key and its hash come from djangorestframework-api-key's generator: a random prefix and
# secret (``<prefix>.<secret>``), hashed with SHA-512, which is right for a random key of this
# length (a password hasher's deliberate slowness would only slow every API call).
_KEYS = KeyGenerator(prefix_length=8, secret_key_length=40)
# last_used_at is written at most this often per key: not one write for every read
API_KEY_LAST_USE_EVERY = timedelta(minutes=1)


@transaction.atomic
def api_key_create(
    *,
    lender: Lender,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
    actor: Actor,
    created_by: User | None = None,
) -> tuple[ApiKey, str]:
    """A new key for ``lender`` and the key itself, which is returned here only: the row
    keeps its SHA-512. Emits ``lenders.api_key.created`` (name, scopes, expiry; never the
    key)."""
    if expires_at is not None and expires_at <= django_timezone.now():
        raise ValidationError({"expires_at": _("Choose a time in the future.")})
    key, prefix, hashed = _KEYS.generate()
    api_key = ApiKey(
        lender=lender,
        name=name,
        prefix=prefix,
        hashed_key=hashed,
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=created_by,
    )
    api_key.full_clean()
    api_key.save(force_insert=True)
    audit_record(
        actor=actor,
        action=LendersAction.API_KEY_CREATED,
        target=api_key,
        data={
            "new": {
                "name": name,
                "prefix": prefix,
                "scopes": api_key.scopes,
                "expires_at": expires_at.isoformat() if expires_at else None,
            }
        },
    )
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key_id: int, lender_id: int, actor: Actor, reason: str) -> ApiKey:
    """Revoke a key of ``lender_id`` for good: every later call with it answers 401.
    Revoking a revoked key changes nothing. Locks: the key. Emits ``lenders.api_key.revoked``."""
    api_key = ApiKey.objects.filter(pk=api_key_id, lender_id=lender_id).select_for_update().first()
    if api_key is None:
        raise ApiKeyNotFound(api_key_id=api_key_id)
    if api_key.revoked_at is not None:
        return api_key
    api_key.revoked_at = django_timezone.now()
    api_key.save(update_fields=["revoked_at", "updated_at"])
    audit_record(
        actor=actor,
        action=LendersAction.API_KEY_REVOKED,
        target=api_key,
        data={"new": {"revoked_at": api_key.revoked_at.isoformat()}},
        reason=reason,
    )
    return api_key


def api_key_authenticate(
    *, key: str
) -> ApiKey | None:  # audit: none, a key's last use is not a state change
    """The usable key ``key`` names (not revoked, not expired, its hash matching), with its
    lender; None otherwise, whichever the reason (the caller learns nothing more).

    Marks its last use, at most once a minute per key, with a conditional UPDATE outside
    any transaction of the caller: a read through the API stays a read."""
    prefix, dot, _secret = key.partition(".")
    if not dot or not prefix:
        return None
    # one statement written once, by the unique prefix; the lender is read only by the
    # calls that need more of it than its id (``api_key.lender``)
    found = select_rows(ApiKey, API_KEY_BY_PREFIX, [prefix])
    api_key = found[0] if found else None
    if api_key is None or not _KEYS.verify(key, api_key.hashed_key):
        return None
    now = django_timezone.now()
    if api_key.revoked_at is not None or (
        api_key.expires_at is not None and api_key.expires_at <= now
    ):
        return None
    stale = now - API_KEY_LAST_USE_EVERY
    if api_key.last_used_at is None or api_key.last_used_at < stale:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
