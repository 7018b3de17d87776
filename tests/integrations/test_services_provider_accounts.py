"""A lender's payment provider accounts: settings checked, secrets sealed at rest under the
environment's keys, write-only, rotatable, and never in the audit trail."""

import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.credentials import CredentialsUnreadable, seal, unseal
from apps.integrations.selectors import provider_account_secrets
from apps.integrations.services import provider_account_save

pytestmark = pytest.mark.django_db

KEY = "abcd1234efgh5678"
SECRET = "ijkl9012mnop3456"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def save(lender, **kwargs):
    values = {
        "provider": "mpesa",
        "enabled": False,
        "settings": {"shortcode": "174379", "environment": "sandbox"},
        "secrets": {},
        **kwargs,
    }
    return provider_account_save(lender_id=lender.pk, actor=Actor.system(), **values)


def test_secrets_are_sealed_at_rest_and_opened_only_for_the_provider(lender_a) -> None:
    account = save(
        lender_a, secrets={"consumer_key": KEY, "consumer_secret": SECRET, "passkey": PASSKEY}
    )
    stored = ProviderAccount.objects.values("sealed_secrets", "secret_names").get(pk=account.pk)
    for value in (KEY, SECRET, PASSKEY):
        assert value not in stored["sealed_secrets"]
    assert stored["secret_names"] == ["consumer_key", "consumer_secret", "passkey"]
    opened = provider_account_secrets(lender_id=lender_a.pk, provider="mpesa")
    assert opened == {"consumer_key": KEY, "consumer_secret": SECRET, "passkey": PASSKEY}


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(lender_a) -> None:
    save(lender_a, secrets={"consumer_key": KEY, "consumer_secret": SECRET, "passkey": PASSKEY})
    save(lender_a, secrets={"consumer_key": "", "consumer_secret": "zzzz9999yyyy8888"})
    opened = provider_account_secrets(lender_id=lender_a.pk, provider="mpesa")
    assert opened == {
        "consumer_key": KEY,
        "consumer_secret": "zzzz9999yyyy8888",
        "passkey": PASSKEY,
    }


def test_the_audit_trail_names_the_secrets_changed_never_their_values(lender_a) -> None:
    save(lender_a, secrets={"consumer_key": KEY, "passkey": PASSKEY})
    save(lender_a, enabled=False, secrets={"passkey": PASSKEY, "consumer_secret": SECRET})
    events = AuditEvent.objects.filter(action="integrations.provider_account.saved").order_by("id")
    assert [e.data["secrets_changed"] for e in events] == [
        ["consumer_key", "passkey"],
        ["consumer_secret"],  # the passkey given again, unchanged
    ]
    trail = json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
    for value in (KEY, SECRET, PASSKEY):
        assert value not in trail
    assert events[0].data["new"]["settings"] == {"shortcode": "174379", "environment": "sandbox"}


def test_bad_values_are_refused_by_field_and_nothing_is_stored(lender_a) -> None:
    with pytest.raises(ValidationError) as refused:
        save(
            lender_a,
            settings={"shortcode": "12ab", "environment": "staging", "colour": "red"},
            secrets={"passkey": "short"},
        )
    assert set(refused.value.message_dict) == {"shortcode", "environment", "colour", "passkey"}
    with pytest.raises(ValidationError) as refused:
        save(lender_a, provider="stripe", settings={}, secrets={"secret_key": "pk_live_abc123456"})
    assert "sk_live" in refused.value.message_dict["secret_key"][0]
    with pytest.raises(ValidationError):
        save(lender_a, provider="paypal", settings={})
    assert not ProviderAccount.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="integrations.").exists()


def test_an_account_is_turned_on_only_with_everything_set(lender_a) -> None:
    with pytest.raises(ValidationError) as refused:
        save(lender_a, enabled=True, secrets={"consumer_key": KEY})
    assert set(refused.value.message_dict) == {"consumer_secret", "passkey"}
    save(lender_a, secrets={"consumer_key": KEY, "consumer_secret": SECRET})
    account = save(lender_a, enabled=True, secrets={"passkey": PASSKEY})  # the rest stored
    assert account.enabled


def test_rotation_reseals_under_the_new_key_and_the_old_key_can_go(lender_a, settings) -> None:
    old_key = settings.PAYMENTS_CREDENTIALS_KEYS[0]
    save(lender_a, secrets={"consumer_key": KEY})
    new_key = Fernet.generate_key().decode()
    settings.PAYMENTS_CREDENTIALS_KEYS = [new_key, old_key]  # the new key first
    call_command("payments_credentials_rotate")
    settings.PAYMENTS_CREDENTIALS_KEYS = [new_key]  # the old one dropped
    assert provider_account_secrets(lender_id=lender_a.pk, provider="mpesa") == {
        "consumer_key": KEY
    }
    assert AuditEvent.objects.filter(action="integrations.provider_account.resealed").count() == 1
    settings.PAYMENTS_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]  # a stranger's key
    with pytest.raises(CredentialsUnreadable):
        provider_account_secrets(lender_id=lender_a.pk, provider="mpesa")


def test_sealing_round_trips_and_refuses_a_damaged_blob() -> None:
    sealed = seal({"a": "1"})
    assert unseal(sealed) == {"a": "1"}
    assert seal({}) == ""
    assert unseal("") == {}
    with pytest.raises(CredentialsUnreadable):
        unseal(sealed[:-4] + "AAAA")


def test_saving_the_same_values_again_writes_and_audits_nothing(lender_a) -> None:
    account = save(lender_a, secrets={"consumer_key": KEY})
    stamp = ProviderAccount.objects.get(pk=account.pk).updated_at
    save(lender_a, secrets={"consumer_key": KEY})  # the same key typed again
    save(lender_a, secrets={})
    assert AuditEvent.objects.filter(action="integrations.provider_account.saved").count() == 1
    assert ProviderAccount.objects.get(pk=account.pk).updated_at == stamp


def test_an_account_whose_key_was_dropped_is_mended_by_typing_every_secret(
    lender_a, settings
) -> None:
    save(lender_a, secrets={"consumer_key": KEY})
    settings.PAYMENTS_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]  # the old key gone
    with pytest.raises(CredentialsUnreadable):
        save(lender_a, secrets={"passkey": PASSKEY})  # the rest cannot be kept
    save(lender_a, secrets={"consumer_key": KEY, "consumer_secret": SECRET, "passkey": PASSKEY})
    assert provider_account_secrets(lender_id=lender_a.pk, provider="mpesa") == {
        "consumer_key": KEY,
        "consumer_secret": SECRET,
        "passkey": PASSKEY,
    }
