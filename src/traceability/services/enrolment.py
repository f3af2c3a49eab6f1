"""Officers enrol the farmers and plots of their own อปท. (the web pages in ``web/enrolment.py``).

* **Scope.** An officer enrols only into their own authority: the farmer of a new plot must be one of it
  (403 ``not_your_farmer`` otherwise, whether the farmer is another authority's or does not exist, so that
  the answer says nothing about other authorities' farmers).
* **Farmers** sign in with their phone number and a PIN: the number is normalised as at sign-in
  (``services.auth.normalise_phone``) and unique; the PIN (4–6 digits) is kept only as its argon2 hash. Codes
  (the pseudonyms events carry, ``F-0005``) are generated.
* **Plots** get a generated code (``PLOT-00005``), a name, the declared area in rai, a crop of the catalogue,
  the standard they are farmed under, a location point and optionally a GeoJSON boundary. A boundary that is
  not a polygon is refused; one whose computed area is far from the declared rai is kept and flagged (the
  drawing or the declaration is wrong, and an inflated declaration is how a plot "grows" enough to launder
  other farms' produce). A point outside Thailand or off the boundary is a warning, not a refusal.
* **Exactly once.** A double tap or a resend must not enrol twice: a plot keeps its form's one-time token
  (``enrolment_key``); a farmer is unique by phone number, and the same farmer posted again (same authority,
  name and PIN) is the same enrolment. Anything else already holding the number is a clear 409.

Form problems are reported all at once, each under its field with a stable code
(:class:`EnrolmentInvalid`); the pages turn codes into Thai or English sentences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from traceability.domain.catalog import CROPS, FarmingStandard
from traceability.domain.geo import check_plot_area, polygon_area_m2
from traceability.domain.states import Role
from traceability.errors import Conflict, Forbidden, InvalidInput
from traceability.services.auth import Principal, normalise_phone
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.store import models
from traceability.store.repository import Repository

PHONE_RE: Final = re.compile(r"^0\d{8,9}$")
"""Thai numbers as dialled at home: 0 and 8 (landline) or 9 (mobile) digits."""
PIN_RE: Final = re.compile(r"^\d{4,6}$")
MAX_FARMER_NAME: Final = 200
MAX_PLOT_NAME: Final = 100
MAX_VILLAGE: Final = 200
MAX_AREA_RAI: Final = Decimal(10_000)
MAX_BOUNDARY_CHARS: Final = 200_000
"""About 2,000 vertices (``domain/geo.py``'s limit) written with 6–7 decimals."""
MAX_NESTING: Final = 12
"""A FeatureCollection's MultiPolygon nests 8 deep; nothing a GPS app exports goes further."""
FARMERS_PER_PAGE: Final = 10
"""Ten farmers with a few plots each keep a page of the list under 30 KB."""
MAX_CHOICES: Final = 150
"""Farmers offered in the plot form's list: about 12 KB of options, within a phone page's 30 KB."""
THAILAND: Final = (Decimal("5.6"), Decimal("20.5"), Decimal("97.3"), Decimal("105.7"))
"""Latitude and longitude bounds of Thailand (south, north, west, east): a point outside is a warning."""
POINT_MARGIN_DEG: Final = 0.01
"""How far (about 1 km) the point may lie outside the boundary's bounding box before it is flagged."""
CODE_ATTEMPTS: Final = 5
_hasher = PasswordHasher()


class EnrolmentInvalid(InvalidInput):
    """A form's problems, all at once: ``problems`` maps each field to a stable code; ``details`` keeps the
    technical reason where there is one (e.g. why a GeoJSON boundary is not a polygon)."""

    code = "invalid_enrolment"

    def __init__(self, problems: Mapping[str, str], details: Mapping[str, str] | None = None) -> None:
        super().__init__("; ".join(f"{field}: {code}" for field, code in problems.items()))
        self.problems = dict(problems)
        self.details = dict(details or {})


def require_officer(principal: Principal) -> int:
    """The officer's authority id; 403 for anyone else."""
    if principal.role != Role.OFFICER or principal.officer_id is None:
        raise Forbidden("only an officer of the authority can enrol farmers and plots", code="not_officer")
    return principal.authority_id


# --- farmers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FarmerApplication:
    display_name: str
    phone: str
    pin: str
    group_th: str | None


@dataclass(frozen=True)
class EnrolledFarmer:
    code: str
    display_name: str
    replayed: bool
    """True when this was a resend of an enrolment already made (nothing new was written)."""


def farmer_application(
    *, display_name: str, phone: str, pin: str, pin_again: str, group_th: str = ""
) -> FarmerApplication:
    """The farmer form checked; :class:`EnrolmentInvalid` names every problem."""
    problems: dict[str, str] = {}
    name = _text(display_name, MAX_FARMER_NAME, "display_name", problems)
    number = normalise_phone(phone)
    if not PHONE_RE.match(number):
        problems["phone"] = "phone_invalid"
    if not PIN_RE.match(pin):
        problems["pin"] = "pin_invalid"
    elif pin != pin_again:
        problems["pin_again"] = "pin_mismatch"
    group = " ".join(group_th.split())
    if len(group) > MAX_FARMER_NAME:
        problems["group_th"] = "too_long"
    if problems:
        raise EnrolmentInvalid(problems)
    return FarmerApplication(name, number, pin, group or None)


def enrol_authority_farmer(
    session: Session, officer: Principal, application: FarmerApplication
) -> EnrolledFarmer:
    """Enrol the farmer into the officer's authority, or recognise a resend of the same enrolment."""
    authority_id = require_officer(officer)
    repo = Repository(session)
    existing = repo.farmer_by_phone(application.phone)
    if existing is not None:
        return _same_farmer(existing, authority_id, application)
    authority = repo.authority(authority_id)
    if authority is None:
        raise Forbidden("the officer's authority is unknown", code="not_officer")
    for _attempt in range(CODE_ATTEMPTS):
        code = _next_code(session, models.Farmer, "F-", 4)
        try:
            with session.begin_nested():
                row = enrol_farmer(
                    session,
                    code=code,
                    authority=authority,
                    display_name=application.display_name,
                    phone=application.phone,
                    pin=application.pin,
                    group_th=application.group_th,
                )
        except (IntegrityError, Conflict):
            # Another request enrolled the same number, or took this code, in the meantime.
            existing = repo.farmer_by_phone(application.phone)
            if existing is not None:
                return _same_farmer(existing, authority_id, application)
            continue
        return EnrolledFarmer(row.code, row.display_name, replayed=False)
    raise Conflict("no free farmer code: try again", code="busy")


def _same_farmer(
    existing: models.Farmer, authority_id: int, application: FarmerApplication
) -> EnrolledFarmer:
    """A resend of the same enrolment is answered as the first was; a number held by anyone else is a 409."""
    same = (
        existing.authority_id == authority_id
        and existing.display_name == application.display_name
        and _pin_matches(existing.pin_hash, application.pin)
    )
    if not same:
        raise Conflict("this phone number is already registered to a farmer", code="phone_taken")
    return EnrolledFarmer(existing.code, existing.display_name, replayed=True)


def _pin_matches(stored: str | None, pin: str) -> bool:
    try:
        return stored is not None and _hasher.verify(stored, pin)
    except (VerificationError, InvalidHashError):
        return False


def _next_code(
    session: Session, model: type[models.Farmer] | type[models.Plot], prefix: str, digits: int
) -> str:
    """The next free code ``prefix`` + a number one above the highest row id (codes made by hand or by the
    demo may already hold a number: those are skipped)."""
    number = int(session.scalar(select(func.max(model.id))) or 0) + 1
    while True:
        code = f"{prefix}{number:0{digits}d}"
        if session.scalar(select(model.id).where(model.code == code)) is None:
            return code
        number += 1


# --- plots -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlotApplication:
    farmer_code: str
    name: str
    village_th: str
    village_en: str
    area_rai: Decimal
    crop: str
    standard: FarmingStandard
    lat: Decimal
    lon: Decimal
    boundary: dict[str, Any] | None
    key: str


def plot_application(
    *,
    key: str,
    farmer_code: str,
    name: str,
    village_th: str,
    village_en: str,
    area_rai: Decimal | None,
    crop: str,
    standard: str,
    lat: str,
    lon: str,
    boundary: str,
) -> PlotApplication:
    """The plot form checked; :class:`EnrolmentInvalid` names every problem. ``area_rai`` is None when the
    area typed could not be read. Without lat/lon the point is the boundary's centre, if there is one; a
    "lat, lon" pair pasted into the latitude field (as map apps copy it) is split."""
    problems: dict[str, str] = {}
    details: dict[str, str] = {}
    farmer = farmer_code.strip().upper()
    if not farmer:
        problems["farmer"] = "farmer_missing"
    plot_name = _text(name, MAX_PLOT_NAME, "name", problems)
    village = _text(village_th, MAX_VILLAGE, "village_th", problems)
    village_english = " ".join(village_en.split())[:MAX_VILLAGE] or village
    if area_rai is None or area_rai <= 0:
        problems["area"] = "area_invalid"
    elif area_rai > MAX_AREA_RAI:
        problems["area"] = "area_too_large"
    if crop not in CROPS:
        problems["crop"] = "crop_invalid"
    try:
        farming = FarmingStandard(standard)
    except ValueError:
        problems["standard"] = "standard_invalid"
    geometry = None
    if len(boundary) > MAX_BOUNDARY_CHARS:
        problems["boundary"] = "boundary_too_large"
    elif boundary.strip():
        try:
            geometry = parse_boundary(boundary)
        except ValueError as exc:
            problems["boundary"] = "boundary_invalid"
            details["boundary"] = str(exc)
    point = _point(lat, lon, geometry, problems)
    if problems:
        raise EnrolmentInvalid(problems, details)
    assert area_rai is not None and point is not None
    return PlotApplication(
        farmer, plot_name, village, village_english, area_rai, crop, farming, *point, geometry, key
    )


def _text(value: str, limit: int, field: str, problems: dict[str, str]) -> str:
    """``value`` with its white space collapsed; ``missing`` or ``too_long`` noted under ``field``."""
    text = " ".join(value.split())
    if not text:
        problems[field] = "missing"
    elif len(text) > limit:
        problems[field] = "too_long"
    return text


def parse_boundary(text: str) -> dict[str, Any]:
    """A pasted GeoJSON boundary as its geometry: a Polygon or MultiPolygon, alone, in a Feature, or in a
    FeatureCollection of one Feature (as GPS and mapping apps export a drawn plot). ValueError otherwise."""
    if len(text) > MAX_BOUNDARY_CHARS:
        raise ValueError(f"the boundary is longer than {MAX_BOUNDARY_CHARS} characters")
    if _nesting(text) > MAX_NESTING:
        # Checked before parsing: the C JSON decoder can overflow the stack (a crash, not an exception) on
        # a few hundred thousand nested brackets.
        raise ValueError(f"the JSON is nested more than {MAX_NESTING} levels deep")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list) or len(features) != 1:
            raise ValueError("a FeatureCollection must hold exactly one Feature: the plot")
        value = features[0]
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict):
        raise ValueError("a boundary is a GeoJSON Polygon or MultiPolygon")
    geometry = {"type": value.get("type"), "coordinates": value.get("coordinates")}
    polygon_area_m2(geometry)
    return geometry


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in the JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _point(
    lat: str, lon: str, geometry: dict[str, Any] | None, problems: dict[str, str]
) -> tuple[Decimal, Decimal] | None:
    lat_text, lon_text = lat.strip(), lon.strip()
    pair = re.fullmatch(r"(-?[\d.]+)\s*[,\s]\s*(-?[\d.]+)", lat_text)
    if pair and not lon_text:
        lat_text, lon_text = pair.groups()
    if not lat_text and not lon_text:
        if geometry is not None:
            return boundary_centre(geometry)
        if "boundary" not in problems:
            problems["lat"] = "point_missing"
        return None
    latitude = _degrees(lat_text, Decimal(90))
    longitude = _degrees(lon_text, Decimal(180))
    if latitude is None:
        problems["lat"] = "lat_invalid"
    if longitude is None:
        problems["lon"] = "lon_invalid"
    return None if latitude is None or longitude is None else (latitude, longitude)


def _degrees(text: str, limit: Decimal) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or abs(value) > limit:
        return None
    return value.quantize(Decimal("0.000001"))


def _outer_vertices(geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [(float(p[0]), float(p[1])) for polygon in polygons for p in polygon[0][:-1]]


def boundary_centre(geometry: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """The mean of the outer rings' corners as (lat, lon): inside any plot shaped as plots are."""
    vertices = _outer_vertices(geometry)
    lon = sum(v[0] for v in vertices) / len(vertices)
    lat = sum(v[1] for v in vertices) / len(vertices)
    return Decimal(f"{lat:.6f}"), Decimal(f"{lon:.6f}")


def plot_warnings(
    lat: Decimal | None, lon: Decimal | None, boundary: Mapping[str, Any] | None, flagged: bool | None
) -> tuple[str, ...]:
    """What an officer should look at again: ``boundary_far`` (the boundary's area is far from the declared
    one), ``outside_thailand`` (the point), ``point_off_boundary`` (the point is not at the boundary)."""
    found: list[str] = []
    if flagged:
        found.append("boundary_far")
    if lat is not None and lon is not None:
        south, north, west, east = THAILAND
        if not (south <= lat <= north and west <= lon <= east):
            found.append("outside_thailand")
        if boundary is not None and not _near(float(lat), float(lon), _outer_vertices(boundary)):
            found.append("point_off_boundary")
    return tuple(found)


def _near(lat: float, lon: float, vertices: Iterable[tuple[float, float]]) -> bool:
    corners = list(vertices)
    lons, lats = [v[0] for v in corners], [v[1] for v in corners]
    m = POINT_MARGIN_DEG
    return min(lats) - m <= lat <= max(lats) + m and min(lons) - m <= lon <= max(lons) + m


@dataclass(frozen=True)
class PlotView:
    """A plot as the officer's pages show it, with the boundary's computed area and any warnings."""

    code: str
    name: str | None
    farmer_code: str
    village_th: str
    village_en: str
    area_rai: Decimal
    crop: str | None
    standard: str | None
    lat: Decimal | None
    lon: Decimal | None
    has_boundary: bool
    boundary_area_rai: Decimal | None
    flagged: bool
    warnings: tuple[str, ...]
    created_at: datetime


def _plot_view(row: models.Plot, farmer_code: str) -> PlotView:
    return PlotView(
        code=row.code,
        name=row.name,
        farmer_code=farmer_code,
        village_th=row.village_th,
        village_en=row.village_en,
        area_rai=row.area_rai,
        crop=row.crop,
        standard=row.standard,
        lat=row.lat,
        lon=row.lon,
        has_boundary=row.boundary is not None,
        boundary_area_rai=row.boundary_area_rai,
        flagged=bool(row.boundary_flagged),
        warnings=plot_warnings(row.lat, row.lon, row.boundary, row.boundary_flagged),
        created_at=row.created_at,
    )


@dataclass(frozen=True)
class EnrolledPlot:
    plot: PlotView
    replayed: bool


@dataclass(frozen=True)
class PlotCheck:
    """What enrolling the plot would record about its boundary, before anything is written."""

    area_rai: Decimal
    boundary_area_rai: Decimal | None
    warnings: tuple[str, ...]


def check_authority_plot(session: Session, officer: Principal, application: PlotApplication) -> PlotCheck:
    """The boundary's computed area and the warnings enrolling the plot would give, writing nothing (the
    form's "check" button): an officer can correct a drawing or a declared area before it is on record."""
    own_farmer(session, require_officer(officer), application.farmer_code)
    check = check_plot_area(application.boundary, application.area_rai) if application.boundary else None
    flagged = check.flagged if check else None
    return PlotCheck(
        application.area_rai,
        check.computed_rai if check else None,
        plot_warnings(application.lat, application.lon, application.boundary, flagged),
    )


def enrol_authority_plot(session: Session, officer: Principal, application: PlotApplication) -> EnrolledPlot:
    """Enrol the plot for a farmer of the officer's authority, or recognise a resend of the same form."""
    authority_id = require_officer(officer)
    farmer = own_farmer(session, authority_id, application.farmer_code)
    existing = _plot_by_key(session, application.key)
    if existing is not None:
        return _same_plot(existing, farmer, application)
    if _plot_by_name(session, farmer.id, application.name) is not None:
        raise _name_taken()
    for _attempt in range(CODE_ATTEMPTS):
        code = _next_code(session, models.Plot, "PLOT-", 5)
        try:
            with session.begin_nested():
                row = enrol_plot(
                    session,
                    code=code,
                    farmer=farmer,
                    village_th=application.village_th,
                    village_en=application.village_en,
                    area_rai=application.area_rai,
                    lat=application.lat,
                    lon=application.lon,
                    name=application.name,
                    crop=application.crop,
                    standard=application.standard,
                    boundary=application.boundary,
                    enrolment_key=application.key,
                )
        except (IntegrityError, Conflict):
            existing = _plot_by_key(session, application.key)
            if existing is not None:
                return _same_plot(existing, farmer, application)
            if _plot_by_name(session, farmer.id, application.name) is not None:
                raise Conflict(
                    "this farmer already has a plot of that name", code="plot_name_taken"
                ) from None
            continue
        return EnrolledPlot(_plot_view(row, farmer.code), replayed=False)
    raise Conflict("no free plot code: try again", code="busy")


def _same_plot(existing: models.Plot, farmer: models.Farmer, application: PlotApplication) -> EnrolledPlot:
    """The same form sent again answers as the first time; its token reused with other values is a 409."""
    same = (
        existing.farmer_id == farmer.id
        and existing.name == application.name
        and existing.area_rai == application.area_rai
        and existing.crop == application.crop
        and existing.standard == application.standard
        and existing.boundary == application.boundary
    )
    if not same:
        raise Conflict("this form was already sent with other values: open a new form", code="form_reused")
    return EnrolledPlot(_plot_view(existing, farmer.code), replayed=True)


def _name_taken() -> Conflict:
    return Conflict("this farmer already has a plot of that name", code="plot_name_taken")


def _plot_by_key(session: Session, key: str) -> models.Plot | None:
    return session.scalar(select(models.Plot).where(models.Plot.enrolment_key == key))


def _plot_by_name(session: Session, farmer_id: int, name: str) -> models.Plot | None:
    return session.scalar(
        select(models.Plot).where(models.Plot.farmer_id == farmer_id, models.Plot.name == name)
    )


def own_farmer(session: Session, authority_id: int, farmer_code: str) -> models.Farmer:
    """A farmer of the authority; 403 for another authority's or an unknown code (the same answer, so it
    tells nothing about other authorities)."""
    farmer = Repository(session).farmer_by_code(farmer_code.strip().upper())
    if farmer is None or farmer.authority_id != authority_id:
        raise Forbidden("this farmer is not one of your authority's", code="not_your_farmer")
    return farmer


def enrolled_plot(session: Session, officer: Principal, plot_code: str) -> PlotView | None:
    """A plot of the officer's authority (None for any other code): the page shown after enrolling it."""
    authority_id = require_officer(officer)
    row = Repository(session).plot_by_code(plot_code.strip().upper())
    if row is None or row.authority_id != authority_id:
        return None
    farmer = Repository(session).farmer(row.farmer_id)
    assert farmer is not None
    return _plot_view(row, farmer.code)


# --- the authority's farmers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FarmerView:
    code: str
    display_name: str
    phone: str
    """Partly masked: the officer recognises the number without the page holding it whole."""
    group_th: str | None
    created_at: datetime
    plots: tuple[PlotView, ...]


def mask_phone(phone: str | None) -> str:
    """``0812345601`` → ``081-xxx-5601``."""
    if not phone:
        return ""
    return f"{phone[:3]}-xxx-{phone[-4:]}" if len(phone) >= 9 else "xxx"


@dataclass(frozen=True)
class FarmerPage:
    """One page of the authority's farmers, newest first (so one just enrolled is at the top)."""

    farmers: tuple[FarmerView, ...]
    page: int
    pages: int


def authority_farmers(
    session: Session, officer: Principal, *, page: int = 1, per_page: int = FARMERS_PER_PAGE
) -> FarmerPage:
    """The officer's authority's farmers, a page at a time (a phone's page stays small), with their plots."""
    authority_id = require_officer(officer)
    ours = models.Farmer.authority_id == authority_id
    total = int(session.scalar(select(func.count()).select_from(models.Farmer).where(ours)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    farmers = session.scalars(
        select(models.Farmer)
        .where(ours)
        .order_by(models.Farmer.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    plots: dict[int, list[models.Plot]] = {}
    for plot in session.scalars(
        select(models.Plot).where(models.Plot.farmer_id.in_([f.id for f in farmers])).order_by(models.Plot.id)
    ):
        plots.setdefault(plot.farmer_id, []).append(plot)
    views = tuple(
        FarmerView(
            code=f.code,
            display_name=f.display_name,
            phone=mask_phone(f.phone),
            group_th=f.group_th,
            created_at=f.created_at,
            plots=tuple(_plot_view(p, f.code) for p in plots.get(f.id, [])),
        )
        for f in farmers
    )
    return FarmerPage(views, page, pages)


@dataclass(frozen=True)
class FarmerChoice:
    code: str
    display_name: str


def farmer_choices(session: Session, officer: Principal, *, chosen: str = "") -> tuple[FarmerChoice, ...]:
    """The farmers a plot can be enrolled for: the authority's, by name, at most ``MAX_CHOICES`` (the list
    page links each farmer to the form with them chosen, and the chosen one is always offered)."""
    authority_id = require_officer(officer)
    ours = models.Farmer.authority_id == authority_id
    rows = list(
        session.execute(
            select(models.Farmer.code, models.Farmer.display_name)
            .where(ours)
            .order_by(models.Farmer.display_name, models.Farmer.code)
            .limit(MAX_CHOICES)
        )
    )
    code = chosen.strip().upper()
    if code and all(row.code != code for row in rows):
        rows += session.execute(
            select(models.Farmer.code, models.Farmer.display_name).where(ours, models.Farmer.code == code)
        ).all()
    return tuple(FarmerChoice(row.code, row.display_name) for row in rows)
