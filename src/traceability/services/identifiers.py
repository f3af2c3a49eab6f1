"""EPCIS master data for the identifiers events carry: the ``epcisMasterData`` of an export, and what the
identifier URIs ``{id_base}/place/{code}`` and ``{id_base}/party/{code}`` answer.

Both come from the same functions, so an importer who follows a URI out of an EPCIS document reads exactly
the vocabulary element the document carried. What a code stands for is ``services.masterdata``'s answer;
this module only turns it into CBV master data (``domain.epcis``: ``LocationMaster``, ``PartyMaster``,
``ClassMaster``). A farmer is never more than "farmer ``F-0001`` of อบต. X": no name, address or phone
(PDPA); an officer likewise, with the office of their อปท. as the contact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy.orm import Session

from traceability.domain.epcis import (
    VTYPE_LOCATION,
    VTYPE_PARTY,
    Bilingual,
    ClassMaster,
    LocationMaster,
    PartyMaster,
    location_element,
    named_identifiers,
    party_element,
    party_uri,
    place_uri,
    vocabulary_list,
)
from traceability.errors import NotFound
from traceability.services import masterdata
from traceability.services.masterdata import PartyInfo, PlaceInfo
from traceability.services.review import ledger_id_base
from traceability.store.repository import Repository

IDENTIFIER_CONTEXT: Final[dict[str, str]] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbvmda": "urn:epcglobal:cbv:mda#",
    "tt": "https://thai-trace.org/ns/epcis#",
}
"""The ``@context`` of a resolved identifier: the prefixes its vocabulary element's attribute ids use."""


def _party_uri(code: str | None, id_base: str) -> str | None:
    return party_uri(code, id_base=id_base) if code else None


def location_master(place: PlaceInfo, *, uri: str, id_base: str) -> LocationMaster:
    """CBV location master data of a place: a field by its village, a location by its address."""
    street = (
        Bilingual(place.village_en, place.village_th)
        if place.kind == "field"
        else Bilingual(place.address_en, place.address_th)
    )
    return LocationMaster(
        uri=uri,
        kind=place.kind,
        name=Bilingual(place.name_en, place.name_th),
        street=street,
        city=Bilingual(place.district_en, place.district_th),
        state=Bilingual(place.province_en, place.province_th),
        country=place.country,
        lat=place.lat,
        lon=place.lon,
        operator=_party_uri(place.operator.code if place.operator else None, id_base),
        authority=_party_uri(place.authority_code, id_base),
    )


def party_master(party: PartyInfo, *, uri: str, id_base: str) -> PartyMaster:
    """CBV master data of a party. A farmer or an officer is named only by kind, code and อปท."""
    authority_en = party.authority_en or "an unknown local authority"
    authority_th = party.authority_th or "องค์กรปกครองส่วนท้องถิ่นที่ไม่ทราบชื่อ"
    if party.kind == "farmer":
        return PartyMaster(
            uri=uri,
            kind="farmer",
            name=Bilingual(
                f"Farmer {party.code} of {authority_en}", f"เกษตรกร {party.code} ของ{authority_th}"
            ),
            address=Bilingual(None, None),
            country="TH",
            phone=None,
            authority=_party_uri(party.authority_code, id_base),
        )
    contact = party.contact
    if party.kind == "officer":
        name = Bilingual(f"Officer {party.code} of {authority_en}", f"เจ้าหน้าที่ {party.code} ของ{authority_th}")
    else:
        name = Bilingual(contact.name_en if contact else None, contact.name_th if contact else None)
    return PartyMaster(
        uri=uri,
        kind=party.kind,
        name=name,
        address=Bilingual(contact.address_en, contact.address_th) if contact else Bilingual(None, None),
        country=contact.country if contact else None,
        phone=contact.phone if contact else None,  # a business or office phone, never a person's
        authority=None if party.kind == "authority" else _party_uri(party.authority_code, id_base),
    )


@dataclass(frozen=True)
class _Lineage:
    """Lots' varieties as the events record them (harvest and planting ``ilmd``), passed on by packing."""

    varieties: dict[str, set[str]]

    @classmethod
    def of(cls, events: Sequence[Mapping[str, Any]]) -> _Lineage:
        named = named_identifiers(events)
        code_of = {uri: code for uri, (code, _) in named.lots.items()}
        varieties: dict[str, set[str]] = {}
        for ev in events:
            variety = ev.get("ilmd", {}).get("tt:variety")
            if variety:
                for element in ev.get("quantityList", []):
                    varieties.setdefault(code_of[element["epcClass"]], set()).add(str(variety))
        changed = True
        while changed:  # outputs inherit their inputs' varieties, through any number of packings
            changed = False
            for ev in events:
                inputs = [code_of[e["epcClass"]] for e in ev.get("inputQuantityList", [])]
                inherited = set().union(*(varieties.get(i, set()) for i in inputs)) if inputs else set()
                for element in ev.get("outputQuantityList", []):
                    have = varieties.setdefault(code_of[element["epcClass"]], set())
                    if not inherited <= have:
                        have |= inherited
                        changed = True
        return cls(varieties)


def master_data(session: Session, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``epcisMasterData.vocabularyList`` for ``events``: every place, party and lot class they name, and
    the businesses and authorities those places and parties refer to in turn (so every URI in the
    document is described in it). Codes the ledger does not know are left out."""
    id_base = ledger_id_base(session, None)
    named = named_identifiers(events)
    place_infos = masterdata.places(session, named.places.values())
    locations = [
        location_master(place_infos[code], uri=uri, id_base=id_base)
        for uri, code in named.places.items()
        if code in place_infos
    ]
    party_uris = dict(named.parties)
    for place in locations:
        for uri in (place.operator, place.authority):
            if uri:
                party_uris[uri] = uri.rsplit("/party/", 1)[1]
    party_infos = masterdata.parties(session, party_uris.values())
    for info in list(party_infos.values()):  # a farmer's or a business's อปท. is described too
        if info.authority_code and info.authority_code not in party_infos:
            party_uris[party_uri(info.authority_code, id_base=id_base)] = info.authority_code
    party_infos = masterdata.parties(session, party_uris.values())
    parties = [
        party_master(party_infos[code], uri=uri, id_base=id_base)
        for uri, code in party_uris.items()
        if code in party_infos
    ]
    lineage = _Lineage.of(events)
    lots = {
        lot.code: lot for lot in Repository(session).lots_by_codes(sorted(c for c, _ in named.lots.values()))
    }
    classes = [
        ClassMaster(
            uri=uri,
            lot_code=code,
            product=Bilingual(lots[code].product_en, lots[code].product_th),
            crop=lots[code].crop,
            varieties=tuple(sorted(lineage.varieties.get(code, ()))),
            gtin=gtin or lots[code].gtin,
        )
        for uri, (code, gtin) in named.lots.items()
        if code in lots
    ]
    return vocabulary_list(locations, parties, classes)


@dataclass(frozen=True)
class IdentifierView:
    """What a browser is shown at an identifier URI: plain view data in both languages (never a person's
    name or phone: a farmer's page has their code, kind and อปท. only)."""

    code: str
    uri: str
    kind: str
    name: Bilingual
    address: Bilingual
    district: Bilingual
    province: Bilingual
    authority: Bilingual
    operator: Bilingual
    country: str | None
    phone: str | None
    lat: Decimal | None
    lon: Decimal | None


@dataclass(frozen=True)
class Resolved:
    """An identifier's answer: its JSON-LD document (the vocabulary element an export carries, with an
    ``@context``) and the same facts as view data for the HTML page."""

    document: dict[str, Any]
    view: IdentifierView


_NONE = Bilingual(None, None)


def _resolved(vocabulary_type: str, element: dict[str, Any]) -> dict[str, Any]:
    return {"@context": dict(IDENTIFIER_CONTEXT), "type": vocabulary_type, **element}


def resolve_place(session: Session, code: str, *, id_base: str | None) -> Resolved:
    """What ``{id_base}/place/{code}`` answers: the place's ``BusinessLocation`` master data; NotFound for a
    code the ledger does not know."""
    base = ledger_id_base(session, id_base)
    info = masterdata.places(session, [code]).get(code)
    if info is None:
        raise NotFound(f"unknown place {code}")
    master = location_master(info, uri=place_uri(code, id_base=base), id_base=base)
    operator = info.operator
    view = IdentifierView(
        code=code,
        uri=master.uri,
        kind=info.kind,
        name=master.name,
        address=master.street,
        district=master.city,
        province=master.state,
        authority=Bilingual(info.authority_en, info.authority_th),
        operator=Bilingual(operator.name_en, operator.name_th) if operator else _NONE,
        country=info.country,
        phone=operator.phone if operator else None,
        lat=info.lat,
        lon=info.lon,
    )
    return Resolved(_resolved(VTYPE_LOCATION, location_element(master)), view)


def resolve_party(session: Session, code: str, *, id_base: str | None) -> Resolved:
    """What ``{id_base}/party/{code}`` answers: the party's master data (a farmer by kind and อปท. only);
    NotFound for a code the ledger does not know."""
    base = ledger_id_base(session, id_base)
    info = masterdata.parties(session, [code]).get(code)
    if info is None:
        raise NotFound(f"unknown party {code}")
    master = party_master(info, uri=party_uri(code, id_base=base), id_base=base)
    view = IdentifierView(
        code=code,
        uri=master.uri,
        kind=info.kind,
        name=master.name,
        address=master.address,
        district=_NONE,
        province=_NONE,
        authority=Bilingual(info.authority_en, info.authority_th) if info.kind != "authority" else _NONE,
        operator=_NONE,
        country=master.country,
        phone=master.phone,
        lat=None,
        lon=None,
    )
    return Resolved(_resolved(VTYPE_PARTY, party_element(master)), view)


def attribute_values(element: Mapping[str, Any]) -> dict[str, list[Any]]:
    """An element's attributes by id (an id may repeat: a merged lot's varieties)."""
    out: dict[str, list[Any]] = {}
    for attribute in element.get("attributes", []):
        out.setdefault(str(attribute["id"]), []).append(attribute.get("attribute"))
    return out


__all__ = [
    "IDENTIFIER_CONTEXT",
    "attribute_values",
    "location_master",
    "master_data",
    "IdentifierView",
    "Resolved",
    "party_master",
    "resolve_party",
    "resolve_place",
]
