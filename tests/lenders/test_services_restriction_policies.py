"""Restriction policies through their services: validated ladders (within the rules of the
lender's country), immutable versions, one active policy per lender."""

from collections.abc import Callable
from dataclasses import replace

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.lenders.country_rules import COUNTRY_RULES, DEFAULT_RULE, country_rule_for
from apps.lenders.errors import RestrictionPolicyNotActive
from apps.lenders.models import RestrictionPolicy, RestrictionPolicyVersion, RestrictionStage
from apps.lenders.selectors import restriction_policy_version_in_force
from apps.lenders.services import StageSpec, default_stages, restriction_policy_version_create
from tests.lenders.factories import LenderFactory, RestrictionPolicyFactory
from tests.lenders.ladders import ALARM, BLOCK_APPS, LOCK, REMINDER, create, ladder

pytestmark = pytest.mark.django_db


def stored_rows() -> tuple[int, int, int, int]:
    return (
        RestrictionPolicy.objects.count(),
        RestrictionPolicyVersion.objects.count(),
        RestrictionStage.objects.count(),
        AuditEvent.objects.filter(action__startswith="lenders.restriction_policy").count(),
    )


def codes(exc: ValidationError, key: str) -> list[str]:
    return [error.code for error in exc.error_dict[key]]


def stage_values(version: RestrictionPolicyVersion) -> list[tuple]:
    return list(
        RestrictionStage.objects.filter(policy_version=version)
        .order_by("position")
        .values_list(
            "position",
            "days_overdue",
            "action",
            "messages",
            "alarm_times",
            "blocked_packages",
            "blocked_categories",
        )
    )


# --- creating a policy --------------------------------------------------------


def test_policy_gets_version_1_with_its_stages_in_order_when_the_ladder_is_valid(lender_a) -> None:
    version = create(lender_a, default_stages("en"))

    assert (version.version, version.lender_id, version.policy.is_active) == (1, lender_a.pk, True)
    assert [(s[1], s[2]) for s in stage_values(version)] == [
        (1, "reminder"),
        (3, "wallpaper"),
        (7, "alarm"),
        (14, "block_apps"),
        (30, "lock"),
    ]
    alarm, block = stage_values(version)[ALARM], stage_values(version)[BLOCK_APPS]
    assert alarm[4] == ["09:00", "18:00"]
    assert (block[5], block[6]) == ([], ["social"])
    assert all(s.lender_id == lender_a.pk for s in RestrictionStage.objects.all())


def test_stage_values_are_normalised_when_stored(lender_a) -> None:
    version = create(
        lender_a,
        ladder(
            s0={"messages": {"en": "  Please pay.  "}},
            s2={"alarm_times": ["18:00", "09:00"]},
            s3={
                "blocked_packages": ["com.b.app", "com.a.app", "com.b.app"],
                "blocked_categories": ["video", "social"],
            },
        ),
    )
    values = stage_values(version)
    assert values[REMINDER][3] == {"en": "Please pay."}
    assert values[ALARM][4] == ["09:00", "18:00"]
    assert (values[BLOCK_APPS][5], values[BLOCK_APPS][6]) == (
        ["com.a.app", "com.b.app"],
        ["social", "video"],
    )


def test_version_created_event_records_the_stages_when_a_policy_is_created(lender_a) -> None:
    version = create(lender_a, default_stages("en"), name="Ladder 2026")

    event = AuditEvent.objects.get(action="lenders.restriction_policy.version_created")
    assert (event.lender_id, event.target_type, event.target_id) == (
        lender_a.pk,
        "lenders.restrictionpolicyversion",
        str(version.pk),
    )
    new = event.data["new"]
    assert (new["policy_id"], new["policy_name"], new["version"]) == (
        version.policy_id,
        "Ladder 2026",
        1,
    )
    assert [
        (s["position"], s["days_overdue"], s["action"], s["alarm_times"], s["blocked_categories"])
        for s in new["stages"]
    ] == [
        (1, 1, "reminder", [], []),
        (2, 3, "wallpaper", [], []),
        (3, 7, "alarm", ["09:00", "18:00"], []),
        (4, 14, "block_apps", [], ["social"]),
        (5, 30, "lock", [], []),
    ]
    assert new["stages"][LOCK]["messages"] == stage_values(version)[LOCK][3]


# --- validation: every branch, its field and code, and nothing stored ------------

TOO_LONG = "x" * 301


@pytest.mark.parametrize(
    ("stages", "key", "code", "text"),
    [
        ([], "stages", "no_stages", "at least one stage"),
        (
            [
                StageSpec(days_overdue=d, action="reminder", messages={"en": "Pay"})
                for d in range(1, 12)
            ],
            "stages",
            "too_many_stages",
            "at most 10 stages",
        ),
        (ladder(s0={"action": "shutdown"}), "stages.0.action", "invalid_action", "“shutdown”"),
        (
            ladder(s0={"days_overdue": 0}),
            "stages.0.days_overdue",
            "days_out_of_range",
            "day 1 and day 365",
        ),
        (ladder(s4={"days_overdue": 366}), "stages.4.days_overdue", "days_out_of_range", "day 365"),
        (
            ladder(s1={"days_overdue": 1}),
            "stages",
            "days_not_increasing",
            "day 1 comes after day 1",
        ),
        (
            ladder(s1={"days_overdue": 10}),
            "stages",
            "days_not_increasing",
            "day 7 comes after day 10",
        ),
        (
            ladder(s0={"action": "wallpaper"}, s1={"action": "reminder"}),
            "stages",
            "severity_decreasing",
            "must not get milder",
        ),
        (
            [*ladder(), replace(default_stages("en")[LOCK], days_overdue=40)],
            "stages",
            "lock_not_last",
            "lock must be the last stage",
        ),
        (
            ladder(s3={"action": "alarm", "blocked_categories": (), "alarm_times": ("12:00",)}),
            "stages",
            "alarm_repeated",
            "at most one alarm stage",
        ),
        (ladder(s2={"alarm_times": ()}), "stages.2.alarm_times", "alarm_times_count", "one to 3"),
        (
            ladder(s2={"alarm_times": ("08:00", "10:00", "12:00", "14:00")}),
            "stages.2.alarm_times",
            "alarm_times_count",
            "one to 3",
        ),
        (
            ladder(s2={"alarm_times": ("09:00", "09:00")}),
            "stages.2.alarm_times",
            "alarm_times_repeated",
            "must differ",
        ),
        (
            ladder(s2={"alarm_times": ("25:00",)}),
            "stages.2.alarm_times",
            "invalid_alarm_time",
            "“25:00”",
        ),
        (
            ladder(s2={"alarm_times": ("9:00",)}),
            "stages.2.alarm_times",
            "invalid_alarm_time",
            "HH:MM",
        ),
        (
            ladder(s2={"alarm_times": "09:00"}),
            "stages.2.alarm_times",
            "invalid_alarm_times",
            "a list",
        ),
        (
            ladder(s2={"alarm_times": ("06:30",)}),
            "stages.2.alarm_times",
            "alarm_outside_contact_hours",
            "06:30 is outside the contact hours in KE (07:00 to 20:00)",
        ),
        (
            ladder(s2={"alarm_times": ("20:00",)}),
            "stages.2.alarm_times",
            "alarm_outside_contact_hours",
            "20:00 is outside",
        ),
        (
            ladder(s0={"alarm_times": ("09:00",)}),
            "stages.0.alarm_times",
            "alarm_times_unexpected",
            "Only an alarm stage",
        ),
        (
            ladder(s3={"blocked_categories": ()}),
            "stages.3.blocked_packages",
            "nothing_blocked",
            "at least one app package or category",
        ),
        (
            ladder(s3={"blocked_packages": ("not a package",)}),
            "stages.3.blocked_packages",
            "invalid_package",
            "“not a package” is not an Android package name",
        ),
        (
            ladder(s3={"blocked_packages": ("whatsapp",)}),
            "stages.3.blocked_packages",
            "invalid_package",
            "“whatsapp”",
        ),
        (
            ladder(s3={"blocked_packages": ("com.android.dialer",)}),
            "stages.3.blocked_packages",
            "package_always_allowed",
            "com.android.dialer cannot be blocked",
        ),
        (
            ladder(s3={"blocked_packages": ("com.android.phone",)}),
            "stages.3.blocked_packages",
            "package_always_allowed",
            "emergency calls",
        ),
        (
            ladder(s3={"blocked_packages": ("com.smartcollection.agent",)}),
            "stages.3.blocked_packages",
            "package_always_allowed",
            "the agent always work",
        ),
        (
            ladder(s3={"blocked_packages": tuple(f"com.app.n{i}" for i in range(51))}),
            "stages.3.blocked_packages",
            "too_many_packages",
            "at most 50",
        ),
        (
            ladder(s3={"blocked_packages": "com.app.one"}),
            "stages.3.blocked_packages",
            "invalid_blocked_packages",
            "a list",
        ),
        (
            ladder(s3={"blocked_categories": ("messaging",)}),
            "stages.3.blocked_categories",
            "unknown_category",
            "“messaging” is not an app category we know. Choose from: social",
        ),
        (
            ladder(s4={"blocked_packages": ("com.app.one",)}),
            "stages.4.blocked_packages",
            "blocking_unexpected",
            "Only a block_apps stage",
        ),
        (
            ladder(s1={"blocked_categories": ("social",)}),
            "stages.1.blocked_categories",
            "blocking_unexpected",
            "Only a block_apps stage",
        ),
        (
            ladder(s0={"messages": {"es": "Pague"}}),
            "stages.0.messages",
            "message_required",
            "needs a message in en",
        ),
        (ladder(s1={"messages": {}}), "stages.1.messages", "message_required", "lender's language"),
        (
            ladder(s4={"messages": {"en": "   "}}),
            "stages.4.messages",
            "empty_message",
            "en message is empty",
        ),
        (
            ladder(s0={"messages": {"en": "Pay", "fr": "Payez"}}),
            "stages.0.messages",
            "unknown_locale",
            "“fr” is not a language",
        ),
        (
            ladder(s1={"messages": {"en": TOO_LONG}}),
            "stages.1.messages",
            "message_too_long",
            "longer than 300 characters",
        ),
        (
            ladder(s2={"messages": ["Reminder"]}),
            "stages.2.messages",
            "invalid_messages",
            "text per language code",
        ),
    ],
)
def test_invalid_ladder_is_refused_with_its_field_and_nothing_is_stored_when_a_rule_is_broken(
    lender_a, stages, key, code, text
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        create(lender_a, stages)
    assert code in codes(excinfo.value, key), excinfo.value.message_dict
    assert any(text in message for message in excinfo.value.message_dict[key])
    assert stored_rows() == (0, 0, 0, 0)


@pytest.mark.parametrize(("name", "code"), [("", "blank"), ("x" * 121, "max_length")])
def test_policy_is_refused_with_a_name_error_when_the_name_is_invalid(lender_a, name, code) -> None:
    with pytest.raises(ValidationError) as excinfo:
        create(lender_a, [], name=name)
    assert codes(excinfo.value, "name") == [code]
    assert codes(excinfo.value, "stages") == ["no_stages"]  # reported together
    assert stored_rows() == (0, 0, 0, 0)


def test_every_broken_stage_is_reported_when_several_are_wrong(lender_a) -> None:
    with pytest.raises(ValidationError) as excinfo:
        create(lender_a, ladder(s0={"days_overdue": 0}, s3={"blocked_categories": ("chat",)}))
    assert set(excinfo.value.error_dict) == {"stages.0.days_overdue", "stages.3.blocked_categories"}


def test_agent_package_from_settings_cannot_be_blocked_when_it_is_configured(
    lender_a, settings
) -> None:
    settings.AGENT_PACKAGE_NAME = "com.example.lockagent"
    with pytest.raises(ValidationError) as excinfo:
        create(lender_a, ladder(s3={"blocked_packages": ("com.example.lockagent",)}))
    assert codes(excinfo.value, "stages.3.blocked_packages") == ["package_always_allowed"]


# --- country rules -------------------------------------------------------------


def test_lock_is_refused_when_the_lenders_country_forbids_it() -> None:
    lender = LenderFactory(country="IN", currency="INR", timezone="Asia/Kolkata")
    with pytest.raises(ValidationError) as excinfo:
        create(lender, default_stages("en"))
    assert codes(excinfo.value, "stages.4.action") == ["action_forbidden_in_country"]
    assert excinfo.value.message_dict["stages.4.action"] == [
        "Full lock is not allowed for lenders in IN."
    ]
    assert stored_rows() == (0, 0, 0, 0)


def test_lock_is_refused_when_earlier_than_the_countrys_earliest_lock_day() -> None:
    lender = LenderFactory(country="PH", currency="PHP", timezone="Asia/Manila")
    with pytest.raises(ValidationError) as excinfo:
        create(lender, ladder(s4={"days_overdue": 29}))
    assert excinfo.value.message_dict["stages.4.days_overdue"] == [
        "In PH a phone may be locked from day 30 overdue at the earliest."
    ]
    assert create(lender, ladder(s4={"days_overdue": 30})).version == 1


def test_only_reminders_and_wallpaper_are_allowed_when_the_country_has_no_rule() -> None:
    lender = LenderFactory(country="FR", currency="EUR", timezone="Europe/Paris")
    assert country_rule_for("FR") is DEFAULT_RULE
    with pytest.raises(ValidationError) as excinfo:
        create(lender, default_stages("en"))
    assert set(excinfo.value.error_dict) == {
        "stages.2.action",
        "stages.3.action",
        "stages.4.action",
    }
    assert create(lender, default_stages("en")[:2]).stages.count() == 2


def test_alarm_time_is_checked_against_the_lenders_own_country_when_hours_differ() -> None:
    ph = LenderFactory(country="PH", currency="PHP", timezone="Asia/Manila")
    mx = LenderFactory(country="MX", currency="MXN", timezone="America/Mexico_City")
    early = ladder(s2={"alarm_times": ("06:30",)})
    assert create(ph, early).version == 1  # PH contact hours start at 06:00
    with pytest.raises(ValidationError) as excinfo:
        create(mx, early)  # MX contact hours start at 07:00
    assert codes(excinfo.value, "stages.2.alarm_times") == ["alarm_outside_contact_hours"]


@pytest.mark.parametrize("country", [*COUNTRY_RULES, "FR"])
def test_default_ladder_validates_when_fitted_to_each_country(country) -> None:
    lender = LenderFactory(country=country, currency="USD", timezone="UTC", locale="es")
    version = create(lender, default_stages("es", country=country))
    rule = country_rule_for(country)
    actions = [s.action for s in version.stages.all()]
    assert set(actions) <= rule.allowed_actions
    if rule.earliest_lock_day is None:
        assert "lock" not in actions
    else:
        assert version.stages.get(action="lock").days_overdue == max(30, rule.earliest_lock_day)
    assert all("es" in s.messages for s in version.stages.filter(action__in=["reminder", "lock"]))


# --- versions ------------------------------------------------------------------


def test_edit_makes_the_next_version_and_leaves_the_previous_intact_when_a_policy_changes(
    lender_a,
) -> None:
    first = create(lender_a, default_stages("en"))
    before = stage_values(first)

    second = restriction_policy_version_create(
        policy=first.policy, stages=ladder(s4={"days_overdue": 45}), actor=Actor.system()
    )
    third = restriction_policy_version_create(
        policy=first.policy, stages=default_stages("en")[:2], actor=Actor.system()
    )

    assert (second.version, third.version) == (2, 3)
    assert second.policy_id == third.policy_id == first.policy_id
    assert stage_values(first) == before
    assert stage_values(second)[LOCK][1] == 45
    assert restriction_policy_version_in_force(lender_id=lender_a.pk) == third
    events = AuditEvent.objects.filter(action="lenders.restriction_policy.version_created")
    assert [e.data["new"]["version"] for e in events.order_by("seq")] == [1, 2, 3]


def test_new_version_is_refused_and_nothing_stored_when_its_ladder_is_invalid(lender_a) -> None:
    first = create(lender_a, default_stages("en"))
    with pytest.raises(ValidationError) as excinfo:
        restriction_policy_version_create(
            policy=first.policy, stages=ladder(s3={"days_overdue": 2}), actor=Actor.system()
        )
    assert codes(excinfo.value, "stages") == ["days_not_increasing"]
    assert stored_rows() == (1, 1, 5, 1)


def test_new_version_is_refused_when_the_policy_was_replaced(lender_a) -> None:
    old = create(lender_a, default_stages("en"), name="Old")
    create(lender_a, default_stages("en"), name="New")
    with pytest.raises(RestrictionPolicyNotActive) as excinfo:
        restriction_policy_version_create(
            policy=old.policy, stages=default_stages("en"), actor=Actor.system()
        )
    assert (excinfo.value.code, excinfo.value.extra) == (
        "restriction_policy_not_active",
        {"policy_id": old.policy_id},
    )
    assert old.policy.versions.count() == 1


@pytest.mark.parametrize(
    ("model", "change"),
    [
        (RestrictionPolicyVersion, lambda qs: qs.update(version=9)),
        (RestrictionPolicyVersion, lambda qs: qs.delete()),
        (RestrictionStage, lambda qs: qs.update(days_overdue=2)),
        (RestrictionStage, lambda qs: qs.update(blocked_packages=["com.other.app"])),
        (RestrictionStage, lambda qs: qs.delete()),
    ],
)
def test_database_refuses_when_a_version_or_stage_is_updated_or_deleted(
    lender_a, model, change: Callable
) -> None:
    version = create(lender_a, default_stages("en"))
    before = (stage_values(version), version.version)
    with pytest.raises(DatabaseError), transaction.atomic():
        change(model.objects.all())
    assert (stage_values(version), RestrictionPolicyVersion.objects.get().version) == before


def test_database_refuses_a_version_or_stage_of_another_lender(lender_a, lender_b) -> None:
    version = create(lender_a, default_stages("en"))
    with pytest.raises(DatabaseError, match="policy's lender"), transaction.atomic():
        RestrictionPolicyVersion.objects.create(lender=lender_b, policy=version.policy, version=2)
    with pytest.raises(DatabaseError, match="version's lender"), transaction.atomic():
        RestrictionStage.objects.create(
            lender=lender_b, policy_version=version, position=6, days_overdue=40, action="lock"
        )
    assert stored_rows()[1:3] == (1, 5)


# --- one active policy per lender ------------------------------------------------


def test_new_policy_replaces_the_active_one_when_created_for_the_same_lender(
    lender_a, lender_b
) -> None:
    first = create(lender_a, default_stages("en"), name="First")
    other = create(lender_b, default_stages("es"), name="Other lender")
    second = create(lender_a, default_stages("en"), name="Second")

    first.policy.refresh_from_db()
    assert (first.policy.is_active, second.policy.is_active) == (False, True)
    assert restriction_policy_version_in_force(lender_id=lender_a.pk) == second
    assert restriction_policy_version_in_force(lender_id=lender_b.pk) == other
    event = AuditEvent.objects.get(action="lenders.restriction_policy.deactivated")
    assert (event.lender_id, event.target_id, event.data) == (
        lender_a.pk,
        str(first.policy_id),
        {"old": {"is_active": True}, "new": {"is_active": False}},
    )
    # the replaced version is untouched: loans pinned to it keep it
    assert first.policy.versions.get() == first
    assert first.stages.count() == 5


def test_failed_replacement_leaves_the_active_policy_active_when_the_new_ladder_is_invalid(
    lender_a,
) -> None:
    first = create(lender_a, default_stages("en"))
    with pytest.raises(ValidationError):
        create(lender_a, [], name="Broken")
    assert restriction_policy_version_in_force(lender_id=lender_a.pk) == first
    assert not AuditEvent.objects.filter(action="lenders.restriction_policy.deactivated").exists()


def test_database_refuses_a_second_active_policy_when_inserted_directly(lender_a) -> None:
    RestrictionPolicyFactory(lender=lender_a, is_active=True)
    RestrictionPolicyFactory(lender=lender_a, is_active=False)  # inactive ones are unlimited
    with pytest.raises(IntegrityError), transaction.atomic():
        RestrictionPolicyFactory(lender=lender_a, is_active=True)
    assert RestrictionPolicy.objects.filter(lender=lender_a, is_active=True).count() == 1
