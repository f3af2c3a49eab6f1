"""Crops the service knows by code, with the product names farmers and buyers see."""

from __future__ import annotations

from dataclasses import dataclass


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
