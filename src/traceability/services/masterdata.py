"""Master data: what the place and party codes in events stand for, for exports and public pages.

Events name places and parties by code only (``PLOT-NSN-01``, ``PH-NSN``, ``CE-NSN-01``, ``F-0001``). An
importer's EPCIS repository, FDA's sortable spreadsheet and a buyer's page need more: a place's name,
address, country and the business phone of whoever answers for it. This module says, for a code:

* a **plot** (``plots``): a field; its village, อำเภอ, จังหวัด and อปท.; answered for by the community
  enterprise its farmer sells through (``farmers.business_id``) or else by the อปท.'s office — never by the
  farmer, whose name and phone stay private (PDPA);
* a **location** (``locations``): a farm, packing house, mill, cold store, port or office, with the business
  that operates it;
* an **authority** code used as a place: the อปท.'s office;
* a **party**: a business (``businesses``), an authority, or a farmer — a farmer only by kind and อปท.

Unknown codes are simply absent from the answers: callers decide how to show them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from traceability.store import models


@dataclass(frozen=True)
class Contact:
    """Who answers for a place: a business or an อปท. office (never a person)."""

    code: str
    kind: str  # a BusinessKind value, or "authority"
    name_th: str
    name_en: str
    address_th: str | None
    address_en: str | None
    country: str
    phone: str | None


@dataclass(frozen=True)
class PlaceInfo:
    code: str
    kind: str  # "field" for a farmer's plot, else a LocationKind value, or "authority_office"
    name_th: str
    name_en: str
    address_th: str | None
    address_en: str | None
    country: str
    lat: Decimal | None
    lon: Decimal | None
    village_th: str | None
    village_en: str | None
    district_th: str | None
    district_en: str | None
    province_th: str | None
    province_en: str | None
    authority_code: str | None
    authority_th: str | None
    authority_en: str | None
    operator: Contact | None


@dataclass(frozen=True)
class PartyInfo:
    code: str
    kind: str  # "farmer", "authority", or a BusinessKind value
    contact: Contact | None  # None for a farmer: a pseudonym only
    authority_code: str | None
    authority_th: str | None
    authority_en: str | None


def _authority_contact(a: models.Authority) -> Contact:
    return Contact(a.code, "authority", a.name_th, a.name_en, a.address_th, a.address_en, "TH", a.phone)


def _business_contact(b: models.Business) -> Contact:
    return Contact(b.code, b.kind, b.name_th, b.name_en, b.address_th, b.address_en, b.country, b.phone)


class _Directory:
    """Authorities and businesses loaded once per call (there are few of them)."""

    def __init__(self, session: Session) -> None:
        self.authorities = {a.id: a for a in session.scalars(select(models.Authority))}
        self.authority_codes = {a.code: a for a in self.authorities.values()}
        self.businesses = {b.id: b for b in session.scalars(select(models.Business))}
        self.business_codes = {b.code: b for b in self.businesses.values()}

    def authority(self, authority_id: int | None) -> models.Authority | None:
        return self.authorities.get(authority_id) if authority_id is not None else None

    def business(self, business_id: int | None) -> models.Business | None:
        return self.businesses.get(business_id) if business_id is not None else None


def _region(a: models.Authority | None) -> dict[str, str | None]:
    return {
        "district_th": a.district_th if a else None,
        "district_en": a.district_en if a else None,
        "province_th": a.province_th if a else None,
        "province_en": a.province_en if a else None,
        "authority_code": a.code if a else None,
        "authority_th": a.name_th if a else None,
        "authority_en": a.name_en if a else None,
    }


def places(session: Session, codes: Iterable[str]) -> dict[str, PlaceInfo]:
    """What each known place code stands for (unknown codes are left out)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    d = _Directory(session)
    out: dict[str, PlaceInfo] = {}
    plot_rows = session.execute(
        select(models.Plot, models.Farmer.business_id)
        .join(models.Farmer, models.Farmer.id == models.Plot.farmer_id)
        .where(models.Plot.code.in_(wanted))
    ).all()
    for plot, business_id in plot_rows:
        authority = d.authority(plot.authority_id)
        business = d.business(business_id)
        operator = (
            _business_contact(business)
            if business
            else (_authority_contact(authority) if authority else None)
        )
        out[plot.code] = PlaceInfo(
            code=plot.code,
            kind="field",
            name_th=f"แปลง {plot.code} {plot.village_th}",
            name_en=f"Field {plot.code}, {plot.village_en}",
            address_th=_join(
                plot.village_th,
                authority.district_th if authority else None,
                authority.province_th if authority else None,
            ),
            address_en=_join(
                plot.village_en,
                authority.district_en if authority else None,
                authority.province_en if authority else None,
                sep=", ",
            ),
            country="TH",
            lat=plot.lat,
            lon=plot.lon,
            village_th=plot.village_th,
            village_en=plot.village_en,
            operator=operator,
            **_region(authority),
        )
    for loc in session.scalars(select(models.Location).where(models.Location.code.in_(wanted))):
        authority = d.authority(loc.authority_id)
        business = d.business(loc.business_id)
        operator = (
            _business_contact(business)
            if business
            else (_authority_contact(authority) if authority else None)
        )
        out[loc.code] = PlaceInfo(
            code=loc.code,
            kind=loc.kind,
            name_th=loc.name_th,
            name_en=loc.name_en,
            address_th=loc.address_th,
            address_en=loc.address_en,
            country=loc.country,
            lat=loc.lat,
            lon=loc.lon,
            village_th=None,
            village_en=None,
            operator=operator,
            **_region(authority),
        )
    for code in wanted:
        authority = d.authority_codes.get(code)
        if code in out or authority is None:
            continue
        out[code] = PlaceInfo(
            code=code,
            kind="authority_office",
            name_th=f"ที่ทำการ{authority.name_th}",
            name_en=f"Office of {authority.name_en}",
            address_th=authority.address_th,
            address_en=authority.address_en,
            country="TH",
            lat=None,
            lon=None,
            village_th=None,
            village_en=None,
            operator=_authority_contact(authority),
            **_region(authority),
        )
    return out


def parties(session: Session, codes: Iterable[str]) -> dict[str, PartyInfo]:
    """What each known party code stands for (unknown codes are left out). A farmer is only "a farmer of
    this อปท.": their name and phone never leave the farmers table."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    d = _Directory(session)
    out: dict[str, PartyInfo] = {}
    for code in wanted:
        business = d.business_codes.get(code)
        authority = d.authority_codes.get(code)
        if business is not None:
            a = d.authority(business.authority_id)
            out[code] = PartyInfo(
                code,
                business.kind,
                _business_contact(business),
                a.code if a else None,
                a.name_th if a else None,
                a.name_en if a else None,
            )
        elif authority is not None:
            out[code] = PartyInfo(
                code, "authority", _authority_contact(authority), code, authority.name_th, authority.name_en
            )
    for officer in session.scalars(select(models.Officer).where(models.Officer.id.in_(_officer_ids(wanted)))):
        a = d.authority(officer.authority_id)
        # An officer acts for their อปท.: the office is the contact, never the person.
        out[f"OFF-{officer.id:04d}"] = PartyInfo(
            f"OFF-{officer.id:04d}",
            "officer",
            _authority_contact(a) if a else None,
            a.code if a else None,
            a.name_th if a else None,
            a.name_en if a else None,
        )
    for farmer in session.scalars(select(models.Farmer).where(models.Farmer.code.in_(wanted))):
        a = d.authority(farmer.authority_id)
        out[farmer.code] = PartyInfo(
            farmer.code,
            "farmer",
            None,
            a.code if a else None,
            a.name_th if a else None,
            a.name_en if a else None,
        )
    return out


def _officer_ids(codes: Iterable[str]) -> list[int]:
    """Row ids of officer party codes (``OFF-0001``: see ``services.parties.officer_party``)."""
    return [int(c[4:]) for c in codes if c.startswith("OFF-") and c[4:].isdigit()]


def _join(*parts: str | None, sep: str = " ") -> str | None:
    present = [p for p in parts if p]
    return sep.join(present) if present else None


__all__ = ["Contact", "PartyInfo", "PlaceInfo", "parties", "places"]
