"""The version of a lender's policy in force, its stages in plain words, and a lender's stage
list."""

import pytest

from apps.lenders.selectors import restriction_policy_version_in_force, restriction_stages_describe
from apps.lenders.services import default_stages
from tests.lenders.factories import LenderFactory, RestrictionPolicyFactory
from tests.lenders.ladders import BLOCK_APPS, create, ladder

pytestmark = pytest.mark.django_db


def test_no_version_is_in_force_when_the_lender_has_no_active_policy(lender_a, lender_b) -> None:
    create(lender_b, default_stages("es"))
    RestrictionPolicyFactory(lender=lender_a, is_active=False)
    assert restriction_policy_version_in_force(lender_id=lender_a.pk) is None


def test_version_in_force_comes_with_its_stages_in_order_when_fetched(
    lender_a, django_assert_num_queries
) -> None:
    create(lender_a, default_stages("en"))
    with django_assert_num_queries(2):
        version = restriction_policy_version_in_force(lender_id=lender_a.pk)
    with django_assert_num_queries(0):
        assert [s.days_overdue for s in version.stages.all()] == [1, 3, 7, 14, 30]
        assert version.policy.name == "Standard"


def test_describe_gives_each_stage_in_plain_words_when_the_ladder_is_standard(lender_a) -> None:
    create(lender_a, default_stages("en"))
    version = restriction_policy_version_in_force(lender_id=lender_a.pk)
    always = "Emergency calls, calls to the lender and payments always work."
    assert restriction_stages_describe(version=version, locale="en") == [
        "From day 1 overdue: you get payment reminders on the phone.",
        "From day 3 overdue: the wallpaper and lock screen show a payment reminder.",
        "From day 7 overdue: a reminder alarm rings at 09:00 and 18:00, never on a Sunday or a "
        "public holiday.",
        f"From day 14 overdue: social apps are blocked. {always}",
        f"From day 30 overdue: the phone locks. {always}",
    ]


def test_describe_names_categories_and_packages_when_a_stage_blocks_both(lender_a) -> None:
    version = create(
        lender_a,
        ladder(
            s3={
                "blocked_categories": ("games", "social"),
                "blocked_packages": ("com.example.casino",),
            }
        ),
    )
    described = restriction_stages_describe(version=version, locale="en")
    assert described[BLOCK_APPS].startswith(
        "From day 14 overdue: games, social apps and com.example.casino are blocked."
    )


def test_a_lenders_stage_list_holds_its_own_versions_only() -> None:
    from apps.lenders.selectors import restriction_stage_list

    mine, theirs = LenderFactory(), LenderFactory()
    first = create(mine, ladder())
    second = create(mine, ladder(), name="Strict")
    create(theirs, ladder())
    listed = restriction_stage_list(lender_id=mine.pk)
    assert {s.policy_version_id for s in listed} == {first.pk, second.pk}
    with pytest.raises(TypeError):
        restriction_stage_list()
