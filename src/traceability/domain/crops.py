"""What is plausible for each crop: yields per rai, growing days, harvest months and storage temperatures.

The numbers are data, not code: ``crops.json`` beside this module, each number with the public source it
comes from (Thai Rice Department, Office of Agricultural Economics, Department of Agriculture, and where no
Thai source gives a figure, the international handbook named). The origin-risk signals (``domain.risk``)
use them as the *prior*: what the ledger's own history is shrunk toward when it has few records, the hard
limits no history can move (a crop cannot be harvested before it can be mature), and the range the cold
chain must hold.

1 rai = 1,600 m². Months are calendar months (1 = January) in Thailand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Source:
    """A public source a number is taken from."""

    id: str
    publisher: str
    title: str
    url: str
    accessed: str  # ISO date the page was read
    says: str  # the figure as the source states it, in its own words (translated where Thai)


@dataclass(frozen=True)
class CropKnowledge:
    """One crop's plausible ranges. ``sources`` maps each field name to the ids of the sources behind it."""

    code: str
    name_th: str
    name_en: str
    typical_kg_per_rai: Decimal
    max_kg_per_rai: Decimal
    growing_days_min: int
    growing_days_max: int
    harvest_months: tuple[int, ...]
    storage_c_min: Decimal
    storage_c_max: Decimal
    sources: Mapping[str, tuple[str, ...]]

    def in_harvest_season(self, month: int) -> bool:
        return month in self.harvest_months


CITED_FIELDS = (
    "typical_kg_per_rai",
    "max_kg_per_rai",
    "growing_days_min",
    "growing_days_max",
    "harvest_months",
    "storage_c_min",
    "storage_c_max",
)


@cache
def _load() -> tuple[dict[str, CropKnowledge], dict[str, Source], dict[str, str]]:
    raw: dict[str, Any] = json.loads(
        resources.files("traceability.domain").joinpath("crops.json").read_text(encoding="utf-8")
    )
    sources = {s["id"]: Source(**s) for s in raw["sources"]}
    crops: dict[str, CropKnowledge] = {}
    for c in raw["crops"]:
        crops[c["code"]] = CropKnowledge(
            code=c["code"],
            name_th=c["name_th"],
            name_en=c["name_en"],
            typical_kg_per_rai=Decimal(c["typical_kg_per_rai"]),
            max_kg_per_rai=Decimal(c["max_kg_per_rai"]),
            growing_days_min=int(c["growing_days_min"]),
            growing_days_max=int(c["growing_days_max"]),
            harvest_months=tuple(int(m) for m in c["harvest_months"]),
            storage_c_min=Decimal(c["storage_c_min"]),
            storage_c_max=Decimal(c["storage_c_max"]),
            sources={k: tuple(v) for k, v in c["sources"].items()},
        )
    aliases: dict[str, str] = dict(raw.get("aliases", {}))
    return crops, sources, aliases


def crop_knowledge(code: str) -> CropKnowledge | None:
    """What is known of the crop ``code`` (or of the crop it is an alias of); None for an unknown crop."""
    crops, _, aliases = _load()
    return crops.get(code) or crops.get(aliases.get(code, ""))


def all_crops() -> tuple[CropKnowledge, ...]:
    return tuple(_load()[0].values())


def sources() -> Mapping[str, Source]:
    return _load()[1]


def aliases() -> Mapping[str, str]:
    return _load()[2]
