"""``manage.py check --deploy`` refuses a master key shorter than 32 bytes, naming it."""

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

MASTER_KEYS = ("PAYMENTS_WEBHOOK_MASTER_KEY", "DEVICE_SIGNING_MASTER_KEY")
CHECK_IDS = {"integrations.E001", "devices.E001"}
STRONG = "k" * 32


def master_key_messages(*, deploy: bool) -> list:
    """What the registered checks say about the master keys (the test settings and the
    browser tests' environment draw other deploy messages, not ours)."""
    return [m for m in run_checks(include_deployment_checks=deploy) if m.id in CHECK_IDS]


@pytest.fixture
def strong_keys(settings) -> None:
    for name in MASTER_KEYS:
        setattr(settings, name, STRONG)


@pytest.mark.parametrize("name", MASTER_KEYS)
@pytest.mark.parametrize(
    "weak", ["", "k" * 31, "é" * 15], ids=["empty", "31_bytes", "15_accents_30_bytes"]
)
def test_check_deploy_fails_naming_the_variable_when_a_master_key_is_under_32_bytes(
    settings, strong_keys, name, weak
) -> None:
    setattr(settings, name, weak)
    with pytest.raises(SystemCheckError) as refused:
        call_command("check", "--deploy", "--tag", "security")
    assert name in str(refused.value)
    other = next(key for key in MASTER_KEYS if key != name)
    assert other not in str(refused.value)


def test_check_deploy_accepts_master_keys_of_32_bytes_or_more(settings, strong_keys) -> None:
    settings.DEVICE_SIGNING_MASTER_KEY = "é" * 16  # 32 bytes in UTF-8
    assert master_key_messages(deploy=True) == []


def test_a_short_master_key_is_not_an_error_outside_a_deploy_check(settings) -> None:
    settings.PAYMENTS_WEBHOOK_MASTER_KEY = settings.DEVICE_SIGNING_MASTER_KEY = "short"
    assert master_key_messages(deploy=False) == []
    assert {m.id for m in master_key_messages(deploy=True)} == CHECK_IDS
