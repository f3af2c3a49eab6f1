"""The crop knowledge in ``domain/crops.json``: every number is cited, consistent, and within what the rest
of the system assumes: the yield ceiling in ``domain/lineage.py``, the harvest season, the cold chain."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlparse

import pytest

from traceability.domain.catalog import CROPS
from traceability.domain.crops import (
    CITED_FIELDS,
    CropKnowledge,
    aliases,
    all_crops,
    crop_knowledge,
    sources,
)
from traceability.domain.lineage import MAX_YIELD_KG_PER_RAI

# lineage.plausible_yield multiplies its fixed ceiling by this tolerance (its default) before flagging
LINEAGE_TOLERANCE = Decimal("1.5")

CROP_IDS = [c.code for c in all_crops()]


def known(code: str) -> CropKnowledge:
    k = crop_knowledge(code)
    assert k is not None, f"no crop knowledge for {code!r}"
    return k


def test_the_three_crops_and_their_aliases_are_known() -> None:
    assert set(CROP_IDS) == {"hom-mali-105", "organic-veg", "watermelon"}
    assert dict(aliases()) == {"rice": "hom-mali-105", "vegetable": "organic-veg"}
    assert known("rice") is known("hom-mali-105")
    assert known("vegetable") is known("organic-veg")


@pytest.mark.parametrize("code", sorted(CROPS))
def test_every_catalogue_crop_resolves(code: str) -> None:
    """A farmer can pick any crop of the catalogue; each one needs a prior, directly or by alias."""
    k = known(code)
    assert k.code in CROP_IDS
    assert k.name_th and k.name_en


def test_an_unknown_crop_has_no_knowledge() -> None:
    assert crop_knowledge("durian") is None
    assert crop_knowledge("") is None


@pytest.mark.parametrize("code", CROP_IDS)
def test_every_cited_field_cites_an_existing_source(code: str) -> None:
    k = known(code)
    assert set(k.sources) == set(CITED_FIELDS), "a field is uncited, or a citation names no field"
    for field in CITED_FIELDS:
        ids = k.sources[field]
        assert ids, f"{code}.{field} cites no source"
        missing = [i for i in ids if i not in sources()]
        assert not missing, f"{code}.{field} cites unknown sources {missing}"
        assert len(set(ids)) == len(ids), f"{code}.{field} cites a source twice"


def test_no_provisional_or_placeholder_source_is_left() -> None:
    for s in sources().values():
        host = urlparse(s.url).hostname or ""
        assert s.id != "provisional"
        assert not host.endswith((".invalid", "example.com", "example.org"))


@pytest.mark.parametrize("source_id", sorted(sources()))
def test_every_source_is_complete(source_id: str) -> None:
    s = sources()[source_id]
    url = urlparse(s.url)
    assert url.scheme == "https", s.url
    assert url.hostname and "." in url.hostname
    assert s.publisher.strip() and s.title.strip() and s.says.strip()
    assert s.accessed == "2026-11-22"
    assert any(ch.isdigit() for ch in s.says), f"{source_id} says no figure"


def test_every_source_is_used() -> None:
    cited = {i for k in all_crops() for ids in k.sources.values() for i in ids}
    assert cited == set(sources())


@pytest.mark.parametrize("code", CROP_IDS)
def test_ranges_are_consistent(code: str) -> None:
    k = known(code)
    assert 0 < k.typical_kg_per_rai < k.max_kg_per_rai
    assert 0 < k.growing_days_min < k.growing_days_max
    assert k.harvest_months, "no harvest month"
    assert all(1 <= m <= 12 for m in k.harvest_months)
    assert len(set(k.harvest_months)) == len(k.harvest_months), "a month is repeated"
    assert k.storage_c_min < k.storage_c_max


def test_hom_mali_fits_what_the_system_assumes() -> None:
    rice = known("hom-mali-105")
    assert Decimal(350) <= rice.typical_kg_per_rai <= Decimal(450)
    assert rice.max_kg_per_rai < MAX_YIELD_KG_PER_RAI["hom-mali-105"] * LINEAGE_TOLERANCE
    assert {11, 12} <= set(rice.harvest_months)
    assert rice.in_harvest_season(11) and not rice.in_harvest_season(7)
    # photoperiod-sensitive: planted May-August, harvested mid-November to December
    assert 60 <= rice.growing_days_min <= 100 and 180 < rice.growing_days_max


def test_leafy_vegetables_are_harvested_all_year_and_kept_cold() -> None:
    veg = known("organic-veg")
    assert set(veg.harvest_months) == set(range(1, 13))
    assert veg.storage_c_min <= Decimal(0) and veg.storage_c_max >= Decimal(4)
    assert veg.storage_c_max <= Decimal(5), "leafy greens must not be held warm"


def test_watermelon_is_kept_cool_but_not_chilled() -> None:
    melon = known("watermelon")
    assert melon.storage_c_min == Decimal(10)
    assert melon.storage_c_max == Decimal(15)
    assert melon.max_kg_per_rai <= MAX_YIELD_KG_PER_RAI["watermelon"] * LINEAGE_TOLERANCE


@pytest.mark.parametrize("code", CROP_IDS)
def test_yield_prior_stays_under_the_fixed_ceiling(code: str) -> None:
    """The risk prior must not allow more than mass balance would accept, or the two would disagree."""
    k = known(code)
    ceiling = MAX_YIELD_KG_PER_RAI.get(k.code)
    assert ceiling is not None
    assert k.max_kg_per_rai <= ceiling * LINEAGE_TOLERANCE
