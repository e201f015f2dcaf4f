"""ASIC presets: a fleet row's ``model`` fills its hashrate and efficiency from public specs.

Manufacturer figures at stock settings, as published lists give them (sources per row;
the shared data's ``asic_specs.csv`` and MODEL.md's hardware line). A scenario that gives
``hashrate_th`` or ``efficiency_j_per_th`` keeps its own values (a unit tuned down, an
ageing fleet); prices are not here: they move with hashprice, give ``unit_price_usd``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from kzsim.scenario.fields import at


class Spec(NamedTuple):
    hashrate_th: float
    efficiency_j_per_th: float
    source: str


_F2POOL = "F2Pool popular mining devices list, March 2020 (mattk8/mining-data)"
_BTCBESS = "KodyParsons/BTCBESS data/miners.csv (manufacturer specs)"
_BITMAIN = "Bitmain product announcement (kzsim MODEL.md, hardware)"

CATALOGUE: dict[str, Spec] = {
    "Antminer S9": Spec(14.0, 85.0, _F2POOL),
    "Antminer S17 Pro": Spec(50.0, 39.5, _F2POOL),
    "Antminer S17+": Spec(73.0, 40.0, _F2POOL),
    "Antminer S19": Spec(95.0, 34.0, _F2POOL),
    "Antminer S19 Pro": Spec(110.0, 29.5, _F2POOL),
    "Antminer S19j Pro": Spec(104.0, 29.5, _BTCBESS),
    "Antminer S19 XP": Spec(140.0, 21.5, _BTCBESS),
    "Antminer S21": Spec(200.0, 17.5, _BITMAIN),
    "Antminer S21 Pro": Spec(234.0, 15.0, _BITMAIN),
    "Whatsminer M30S": Spec(88.0, 38.0, _F2POOL),
    "Whatsminer M50": Spec(106.0, 31.2, _BTCBESS),
    "Whatsminer M50S": Spec(126.0, 26.2, _BTCBESS),
    "Avalon 1166": Spec(68.0, 47.0, _F2POOL),
}


def _key(name: str) -> str:
    """A model name compared without case, spaces, dashes or a maker's prefix ("S21" = "Antminer S-21")."""
    name = re.sub(r"[\s\-_]+", "", name.lower())
    return re.sub(r"^(antminer|bitmain|whatsminer|microbt|avalon|canaan)", "", name) or name


_BY_KEY = {_key(name): name for name in CATALOGUE}


def lookup(model: str) -> tuple[str, Spec] | None:
    """The catalogue's name and spec of ``model``, or None when it is not in the catalogue."""
    name = _BY_KEY.get(_key(model))
    return (name, CATALOGUE[name]) if name else None


def known_models() -> str:
    return ", ".join(CATALOGUE)


SPEC_KEYS = ("hashrate_th", "efficiency_j_per_th")


def fill_specs(data, model_key: str):
    """A fleet row's (or an upgrade's) mapping with the specs it leaves out taken from the
    catalogue for the model named under ``model_key``; ValueError located at the first
    missing key when the model is not in the catalogue. Anything else is returned as it is
    (pydantic then says what is wrong)."""
    if not isinstance(data, dict) or not isinstance(data.get(model_key), str):
        return data
    missing = [k for k in SPEC_KEYS if k not in data]
    if not missing:
        return data
    found = lookup(data[model_key])
    if found is None:
        raise ValueError(
            at(
                missing[0],
                f"missing, and {data[model_key]!r} is not in the catalogue (allowed: give "
                f"{' and '.join(missing)}, or a model of the catalogue: {known_models()})",
            )
        )
    return {**data, **{k: getattr(found[1], k) for k in missing}}
