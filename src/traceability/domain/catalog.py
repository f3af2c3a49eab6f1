"""Crops and farming standards the service knows by code, with the names farmers, officers and buyers see."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Crop:
    code: str
    name_th: str
    name_en: str


CROPS: dict[str, Crop] = {
    c.code: c
    for c in (
        Crop("hom-mali-105", "ข้าวหอมมะลิ 105", "Hom Mali 105 jasmine rice"),
        Crop("rice", "ข้าว", "Rice"),
        Crop("organic-veg", "ผักอินทรีย์", "Organic vegetables"),
        Crop("vegetable", "ผัก", "Vegetables"),
        Crop("watermelon", "แตงโม", "Watermelon"),
    )
}


def crop(code: str) -> Crop:
    return CROPS.get(code) or Crop(code, code, code)


class FarmingStandard(StrEnum):
    """What a plot is farmed under, as the อปท. records it when enrolling the plot (not a certificate: that is
    an officer's signed certification of a lot). The plots table CHECKs its column against these values."""

    ORGANIC_THAILAND = "organic_thailand"
    """Organic Thailand (มกท./กรมวิชาการเกษตร) organic certification."""
    PGS = "pgs"
    """Participatory Guarantee System: organic, vouched for by the community group and the อปท."""
    ORGANIC_CONVERSION = "organic_conversion"
    """In the (usually three-year) conversion to organic: not yet sold as organic."""
    GAP = "gap"
    """Thai Good Agricultural Practice (มกษ. 9001), the usual export requirement for fresh produce."""
    CONVENTIONAL = "conventional"
    """None of the above."""


@dataclass(frozen=True)
class StandardName:
    name_th: str
    name_en: str


STANDARDS: dict[FarmingStandard, StandardName] = {
    FarmingStandard.ORGANIC_THAILAND: StandardName("เกษตรอินทรีย์ Organic Thailand", "Organic Thailand"),
    FarmingStandard.PGS: StandardName("เกษตรอินทรีย์แบบมีส่วนร่วม (PGS)", "Organic, participatory guarantee (PGS)"),
    FarmingStandard.ORGANIC_CONVERSION: StandardName("ระยะปรับเปลี่ยนเป็นเกษตรอินทรีย์", "In conversion to organic"),
    FarmingStandard.GAP: StandardName(
        "มาตรฐาน GAP (การปฏิบัติทางการเกษตรที่ดี)", "Good Agricultural Practice (GAP)"
    ),
    FarmingStandard.CONVENTIONAL: StandardName("เกษตรทั่วไป", "Conventional"),
}


class LocationKind(StrEnum):
    """What a place that is not a farmer's plot is (FSMA 204 location descriptions, EPCIS master data). The
    locations table CHECKs its column against these values."""

    FARM = "farm"
    PACKING_HOUSE = "packing_house"
    MILL = "mill"
    COLD_STORE = "cold_store"
    WAREHOUSE = "warehouse"
    PORT = "port"
    OFFICE = "office"


class BusinessKind(StrEnum):
    """The kind of a business party (never a person: farmers are parties by pseudonym only). The businesses
    table CHECKs its column against these values."""

    COMMUNITY_ENTERPRISE = "community_enterprise"
    """วิสาหกิจชุมชน: the farmers' group that packs and sells."""
    COOPERATIVE = "cooperative"
    EXPORTER = "exporter"
    IMPORTER = "importer"
    CARRIER = "carrier"
