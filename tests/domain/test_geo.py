"""Plot boundaries: GeoJSON polygon areas in rai, and the flag for a boundary far from the declared area."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from traceability.domain.geo import check_plot_area, polygon_area_m2, rai, rai_ngan_wa

# A square of 40 m x 40 m (one rai) near Ban Nong Sanit, Surin (15.11 N, 103.61 E).
LAT, LON = 15.1108, 103.6163
DLAT = 40 / 111_320
DLON = 40 / (111_320 * math.cos(math.radians(LAT)))


def square(scale: float = 1.0, lat: float = LAT, lon: float = LON) -> list[list[float]]:
    dlat, dlon = DLAT * scale, DLON * scale
    return [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]


def polygon(*rings: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def test_a_forty_metre_square_is_one_rai():
    area = polygon_area_m2(polygon(square()))
    assert 1590 < area < 1610
    assert rai(area) == Decimal("1.00")


def test_orientation_does_not_matter_and_holes_are_subtracted():
    ccw = square(2)  # 80 m x 80 m: four rai
    assert polygon_area_m2(polygon(ccw)) == pytest.approx(polygon_area_m2(polygon(ccw[::-1])))
    hole = square(1, LAT + DLAT / 2, LON + DLON / 2)[::-1]
    with_hole = polygon_area_m2(polygon(ccw, hole))
    assert with_hole == pytest.approx(
        polygon_area_m2(polygon(ccw)) - polygon_area_m2(polygon(hole)), rel=1e-9
    )
    multi = {"type": "MultiPolygon", "coordinates": [[square()], [square(1, LAT + 0.01, LON)]]}
    assert polygon_area_m2(multi) == pytest.approx(2 * polygon_area_m2(polygon(square())), rel=1e-3)


def test_a_land_title_area_in_rai_ngan_wa():
    # 2 rai 3 ngan 50 square wa = 3,200 + 1,200 + 200 m²
    assert rai_ngan_wa(4600) == (2, 3, Decimal("50.0"))


def test_a_boundary_far_from_the_declared_area_is_flagged():
    boundary = polygon(square(math.sqrt(2.5)))  # drawn: 2.5 rai
    fine = check_plot_area(boundary, Decimal("2.5"))
    assert not fine.flagged and fine.computed_rai == Decimal("2.50")
    inflated = check_plot_area(boundary, Decimal("8"))  # declared 8 rai on a 2.5-rai field
    assert inflated.flagged and inflated.ratio == pytest.approx(2.5 / 8, rel=1e-2)
    assert check_plot_area(boundary, Decimal("2.1")).flagged is False  # within 25 %
    assert check_plot_area(boundary, Decimal("1.9")).flagged is True


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [LON, LAT]}, "Polygon or MultiPolygon"),
        (polygon(square()[:-1]), "end where it starts"),
        (polygon([[LON, LAT], [LON, LAT], [LON, LAT], [LON, LAT]]), "three distinct"),
        (polygon([[200, LAT], [LON, LAT], [LON, LAT + 1], [200, LAT]]), "outside"),
        (polygon([[LON, LAT], ["x", LAT], [LON, LAT + 1], [LON, LAT]]), "numbers"),
        ("not a geometry", "GeoJSON geometry"),
        (polygon(square()[:3]), "at least four"),
    ],
)
def test_bad_boundaries_are_refused_with_a_reason(geometry, message):
    with pytest.raises(ValueError, match=message):
        polygon_area_m2(geometry)
