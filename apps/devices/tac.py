"""Brand and model from an IMEI's type allocation code (TAC, its first 8 digits).

The GSMA allocates each TAC to one maker's model and licenses its full table to operators
and retailers; the counter only suggests a brand and model from it, and the clerk checks
them against the box. This table is deliberately small: the demo's phones, whose IMEIs are
the textbook example numbers that seed_demo and the tests sell as a Tecno Spark 20 (they are
not GSMA allocations). A retailer with the GSMA's table adds its rows here, or loads them
from it; an IMEI whose TAC is not here simply gets no suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PhoneModel:
    brand: str
    model_name: str


TAC_MODELS: dict[str, PhoneModel] = {
    # the demo's phones (apps/demo/management/commands/seed_demo.py, tests/devices/factories.py)
    "35209900": PhoneModel("Tecno", "Spark 20"),
    "49015420": PhoneModel("Tecno", "Spark 20"),
    "35693803": PhoneModel("Tecno", "Spark 20"),
}


def tac_lookup(imei: str) -> PhoneModel | None:
    """The model ``imei``'s TAC names, or None when unknown (or fewer than 8 digits typed).
    Spaces and dashes as printed on a box are ignored."""
    digits = "".join(c for c in imei if c.isdigit())
    if len(digits) < 8:
        return None
    return TAC_MODELS.get(digits[:8])
