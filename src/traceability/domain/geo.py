"""Plot boundaries: GeoJSON polygons (RFC 7946, WGS 84 longitude/latitude) and their area in rai.

EU deforestation rules (Regulation (EU) 2023/1115) ask exporters for the polygon of every plot over 4 ha; an
officer enrolling a plot may draw or paste one. A polygon whose computed area is far from the area declared
in rai is flagged on the form: either the drawing or the declaration is wrong, and an inflated declaration is
how a plot "grows" enough to launder other farms' produce (สวมสิทธิ์).

Area: the spherical-excess formula on the WGS 84 semi-major axis, as GeoJSON tools commonly compute it
(Chamberlain & Duquette, "Some algorithms for polygons on a sphere", JPL 2007) — within a fraction of a
percent of the ellipsoidal area for plots of any size found on a farm.
1 rai = 1,600 m², 1 งาน = 400 m² (¼ rai).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

EARTH_RADIUS_M = 6_378_137.0
M2_PER_RAI = 1600
M2_PER_NGAN = 400
MAX_VERTICES = 2000
DEFAULT_TOLERANCE = 0.25
"""A computed area more than 25 % above or below the declared one is flagged (hand-drawn boundaries and
phone GPS are rough; a plot twice its size is not)."""


def _ring_area_m2(ring: Sequence[Sequence[float]]) -> float:
    """Signed area of a closed ring of ``[lon, lat]`` positions (counter-clockwise positive)."""
    total = 0.0
    n = len(ring)
    for i in range(n - 1):
        lon1, lat1 = ring[i][0], ring[i][1]
        lon2, lat2 = ring[i + 1][0], ring[i + 1][1]
        total += math.radians(lon2 - lon1) * (2 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2)))
    return total * EARTH_RADIUS_M * EARTH_RADIUS_M / 2


def _position(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise ValueError("a position is [longitude, latitude]")
    lon, lat = value[0], value[1]
    if any(isinstance(v, bool) or not isinstance(v, int | float | Decimal) for v in (lon, lat)):
        raise ValueError("longitude and latitude are numbers")
    lon_f, lat_f = float(lon), float(lat)
    if not (-180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        raise ValueError(f"position [{lon}, {lat}] is outside longitude −180..180 / latitude −90..90")
    return lon_f, lat_f


def _ring(value: Any) -> list[tuple[float, float]]:
    if not isinstance(value, list) or len(value) < 4:
        raise ValueError("a ring has at least four positions (a triangle, closed)")
    if len(value) > MAX_VERTICES:
        raise ValueError(f"a ring may have at most {MAX_VERTICES} positions")
    ring = [_position(p) for p in value]
    if ring[0] != ring[-1]:
        raise ValueError("a ring must end where it starts (RFC 7946 §3.1.6)")
    if len(set(ring[:-1])) < 3:
        raise ValueError("a ring needs at least three distinct corners")
    return ring


def polygon_area_m2(geometry: Any) -> float:
    """The area in m² of a GeoJSON ``Polygon`` or ``MultiPolygon`` geometry (holes subtracted).

    ValueError for anything else: a wrong type, open rings, positions out of range, too many vertices.
    """
    if not isinstance(geometry, dict):
        raise ValueError("a boundary is a GeoJSON geometry object")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    polygons: list[Any]
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon" and isinstance(coordinates, list):
        polygons = coordinates
    else:
        raise ValueError("a boundary is a GeoJSON Polygon or MultiPolygon")
    if not polygons or not all(isinstance(p, list) and p for p in polygons):
        raise ValueError("a polygon has an outer ring and optional holes")
    area = 0.0
    for rings in polygons:
        outer, *holes = (_ring(r) for r in rings)
        area += abs(_ring_area_m2(outer)) - sum(abs(_ring_area_m2(h)) for h in holes)
    if area <= 0:
        raise ValueError("the boundary encloses no area")
    return area


def rai(area_m2: float) -> Decimal:
    """Square metres as rai, to 0.01 rai."""
    return (Decimal(str(area_m2)) / M2_PER_RAI).quantize(Decimal("0.01"))


def rai_ngan_wa(area_m2: float) -> tuple[int, int, Decimal]:
    """The way a Thai land title writes an area: ไร่, งาน and ตารางวา (1 ตร.ว. = 4 m²)."""
    whole_rai, rest = divmod(Decimal(str(area_m2)), M2_PER_RAI)
    ngan, rest = divmod(rest, M2_PER_NGAN)
    return int(whole_rai), int(ngan), (rest / 4).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class AreaCheck:
    """A boundary's area against the declared one: ``flagged`` when they differ by more than the tolerance."""

    declared_rai: Decimal
    computed_rai: Decimal
    ratio: float
    flagged: bool


def check_plot_area(
    geometry: Any, declared_rai: Decimal, *, tolerance: float = DEFAULT_TOLERANCE
) -> AreaCheck:
    """Compare a plot's boundary with its declared area in rai."""
    if declared_rai <= 0:
        raise ValueError("the declared area must be more than zero")
    area = polygon_area_m2(geometry)
    ratio = area / (float(declared_rai) * M2_PER_RAI)
    return AreaCheck(declared_rai, rai(area), ratio, abs(ratio - 1) > tolerance)


EARTH_RADIUS_KM = 6371.0088  # the IUGG mean radius


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance in km between two (lat, lon) points in degrees, along the Earth's surface (haversine): a
    lower bound on any road between them."""
    lat1, lon1, lat2, lon2 = (math.radians(v) for v in (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
