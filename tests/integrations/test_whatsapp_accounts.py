"""A lender's WhatsApp Business account: each value checked with a message of its own, and
the settings that may stay blank."""

import pytest
from django.core.exceptions import ValidationError

from apps.integrations.services import provider_account_check
from tests.integrations.whatsapp import SECRETS as GOOD_SECRETS
from tests.integrations.whatsapp import SETTINGS as GOOD_SETTINGS


def problems(*, enabled: bool = True, settings=None, secrets=None, stored=()) -> dict:
    try:
        provider_account_check(
            provider="whatsapp",
            enabled=enabled,
            settings=GOOD_SETTINGS if settings is None else settings,
            secrets=GOOD_SECRETS if secrets is None else secrets,
            stored=list(stored),
        )
    except ValidationError as exc:
        return exc.message_dict
    return {}


def test_a_complete_account_passes_with_the_graph_version_left_blank() -> None:
    assert problems() == {}
    assert problems(settings={**GOOD_SETTINGS, "graph_api_version": "v22.0"}) == {}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("phone_number_id", "+254700000100", "digits, not the number itself"),
        ("business_account_id", "WABA-1", "The WhatsApp Business Account's ID: digits."),
        ("graph_api_version", "21", "A Graph API version such as v21.0"),
        ("access_token", "sk_live_abcdefghijklmnopqrstuvwxyz", "access token (Business settings)"),
        ("app_secret", "0123456789ABCDEF", "32 hexadecimal characters"),
        ("verify_token", "short token", "16 to 200 characters without spaces"),
    ],
)
def test_each_bad_value_is_refused_beside_its_field(field, value, says) -> None:
    if field in GOOD_SECRETS:
        found = problems(secrets={**GOOD_SECRETS, field: value})
    else:
        found = problems(settings={**GOOD_SETTINGS, field: value})
    assert list(found) == [field]
    assert says in found[field][0]


def test_turning_it_on_needs_every_value_but_the_graph_version() -> None:
    found = problems(settings={}, secrets={})
    assert set(found) == {
        "phone_number_id",
        "business_account_id",
        "access_token",
        "app_secret",
        "verify_token",
    }
    assert found["app_secret"] == ["Needed before the provider is turned on."]
    # secrets already stored need not be typed again
    assert problems(secrets={}, stored=GOOD_SECRETS) == {}
    assert problems(enabled=False, settings={}, secrets={}) == {}
