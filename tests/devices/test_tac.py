"""The brand and model an IMEI's TAC names (apps/devices/tac.py)."""

import pytest

from apps.devices.tac import TAC_MODELS, PhoneModel, tac_lookup


@pytest.mark.parametrize("imei", ["352099001761481", "35-209900-176148-1", "35209900"])
def test_a_known_tac_names_its_model_however_the_imei_is_written(imei) -> None:
    assert tac_lookup(imei) == PhoneModel("Tecno", "Spark 20")


@pytest.mark.parametrize("imei", ["", "3520990", "990000862471854"])
def test_no_suggestion_when_the_tac_is_unknown_or_not_yet_typed(imei) -> None:
    assert tac_lookup(imei) is None


def test_every_tac_in_the_table_is_8_digits() -> None:
    assert all(len(tac) == 8 and tac.isdigit() for tac in TAC_MODELS)
