"""Events in their GS1 EPCIS 2.0 JSON-LD form, the form that is stored, hashed and exported.

Mapping (GS1 US "EPCIS Recommendations for FSMA 204 CTEs"). Lots are class-level identifiers: a GS1 Digital
Link ``https://id.gs1.org/01/{GTIN}/10/{lot}`` when the product has a GTIN, else ``{id_base}/lot/{lot}``.
Places are ``{id_base}/place/{code}``, or ``https://id.gs1.org/414/{GLN}`` for a place identified by its GLN;
parties are ``{id_base}/party/{code}`` (pseudonymous codes, never names: PDPA). ``id_base`` is fixed for the
life of a ledger (see ``docs/identifiers.md``): every URI below is inside the hashed body.

==============  ===========================  =========================================================
kind            EPCIS event                  fields
==============  ===========================  =========================================================
planting        ObjectEvent ADD              ``commissioning``, ``active``; the lot class without
                                             quantity; readPoint = where recorded, bizLocation = the
                                             plot; ``ilmd`` crop and variety; ``tt:areaRai``,
                                             ``tt:authority`` (the plot's อปท.). Not an FSMA 204 CTE.
harvest         ObjectEvent ADD              ``creating_class_instance``, ``active``; lot + quantity;
                                             readPoint = the farm, bizLocation = the field (plot);
                                             ``ilmd`` commodity (``tt:crop``) and ``tt:variety``
cooling         ObjectEvent OBSERVE          ``storing`` (CBV 2.0 has no cooling step), ``active``; lot +
                                             quantity; read point and location = the cooler;
                                             ``tt:coolingMethod``; readings as a ``sensorElementList``
grading         ObjectEvent OBSERVE          ``inspecting``; ``conformant`` (accepted) or
                                             ``non_conformant`` (rejected) with that quantity; ``tt:grade``
packing         TransformationEvent          ``creating_class_instance``, ``active`` (initial packing,
                                             split, merge); input/output quantity lists
transport       ObjectEvent OBSERVE          ``shipping``/``in_transit`` or ``receiving``/``in_progress``;
                                             ``bizTransactionList`` (reference documents: ``bol``,
                                             ``desadv``, ``recadv``, ``po``, ...); source/destination
                                             lists of type ``location`` and, where ownership changes,
                                             ``owning_party``; temperatures as a ``sensorElementList``
certification   ObjectEvent OBSERVE          ``inspecting``, ``conformant``, ``certificationInfo`` = the
                                             certification's URI; the signed data as ``tt:`` members
revocation      ObjectEvent OBSERVE          ``inspecting``, ``non_conformant``, ``certificationInfo`` =
                                             the revoked certification's URI; ``tt:reason``
==============  ===========================  =========================================================

Every event has ``eventID`` ``urn:uuid:…`` (exports replace it with the event's CBV 2.0 Event Hash ID:
``with_event_hash_id``), ``eventTime`` with its own offset at millisecond precision,
``eventTimeZoneOffset`` (the local zone where it happened) and ``readPoint``. What EPCIS has no field for is
an extension property in the project's namespace ``tt:`` (``NS``): ``tt:kind`` (a term IRI such as
``{NS}harvest``), ``tt:actor`` (a party URI), ``tt:lat``/``tt:lon``, ``tt:grade``, ``tt:gtin``,
``tt:vehicle``, ``tt:officer``, ``tt:authority``, ``tt:standard``, ``tt:certificateHash``, ``tt:expires``,
``tt:nonce``, ``tt:deadline``, ``tt:signature``, ``tt:reason``, ``tt:coolingMethod``, ``tt:evidence`` (URIs of
evidence files), ``tt:prev`` (the CBV 2.0 Event Hash IDs of the previous event of each lot) and ``tt:note``.
They sit at the top level of the event (or in ``ilmd``), where every CBV 2.0 implementation treats extensions
alike.

Numbers. EPCIS requires ``quantity`` and sensor ``value`` to be JSON numbers, so quantities, coordinates,
temperatures and the area are JSON numbers, held as ``Decimal`` in the dicts this module builds and reads.
Write a body with ``traceability.domain.codec.dumps`` (exact digits, never an exponent) and read it back with
``codec.loads``, i.e. ``json.loads(text, parse_float=Decimal)``: ``from_epcis`` refuses a float (plain
``json.loads``) rather than round it. The event hash canonicalises numbers by value, so it is the same for
``12.5`` read as a float by GS1's reference tool and as a ``Decimal`` here; the models bound every decimal
(at most 3 places for quantities, 7 for coordinates, 15 significant digits) so that two different values
never share a canonical form, and integers stay below 2**53.

A body is built once, when the event is recorded, then stored and hashed; never rebuild an old event with a
different ``id_base`` or GTINs, as its URIs (and so its hash) would change. Bodies are stored and exported in
canonical member order (``in_canonical_order``): GS1's reference tool reads a bizTransaction, source or
destination element in the order its members are written, so ``type`` comes first and nothing may re-sort.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from traceability.domain.events import (
    EVENT_ADAPTER,
    Certification,
    Cooling,
    Event,
    Grading,
    Harvest,
    LotQuantity,
    Packing,
    Planting,
    Quantity,
    Revocation,
    TemperatureReading,
    Transport,
)
from traceability.domain.gs1 import gln_uri, is_gln, lot_uri, parse_gln_uri, parse_lot_uri
from traceability.domain.ids import HASH_PREFIX, HASH_SUFFIX, hash_ni

NS: Final = "https://thai-trace.org/ns/epcis#"
PREFIX: Final = "tt"
GS1_EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
"""The versioned EPCIS 2.0.0 context: bare terms such as ``shipping`` must expand the same way forever for the
hash to be reproducible (the unversioned URL follows the latest release), and GS1's reference hash tool ships
this exact file, so an importer can check our hashes offline."""
EPCIS_CONTEXT: Final[list[Any]] = [GS1_EPCIS_CONTEXT, {PREFIX: NS}]

_BASE = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?")
_LEGS = {"ship": ("shipping", "in_transit"), "receive": ("receiving", "in_progress")}


def normalise_id_base(id_base: str) -> str:
    """``id_base`` without a trailing slash; ValueError unless an http(s) URL without query or fragment."""
    return _base(id_base)


@lru_cache(maxsize=64)
def _base(id_base: str) -> str:
    """Every URI of an event goes through here, and a ledger has one ``id_base``: checked once."""
    base = id_base.rstrip("/")
    if not _BASE.fullmatch(base):
        raise ValueError(f"id_base must be an http(s) URL without query or fragment: {id_base!r}")
    return base


def lot_class_uri(lot_code: str, *, id_base: str, gtin: str | None = None) -> str:
    """The lot as an EPC class: GS1 Digital Link with a GTIN, else an HTTP URI under ``id_base``."""
    if gtin:
        return lot_uri(gtin, lot_code)
    return f"{_base(id_base)}/lot/{lot_code}"


def place_uri(place_id: str, *, id_base: str) -> str:
    """A place: its GLN's Digital Link when the code is a GLN, else an HTTP URI under ``id_base``."""
    if is_gln(place_id):
        return gln_uri(place_id)
    return f"{_base(id_base)}/place/{place_id}"


def party_uri(party_id: str, *, id_base: str) -> str:
    return f"{_base(id_base)}/party/{party_id}"


def evidence_uri(sha256_hex: str, *, id_base: str) -> str:
    return f"{_base(id_base)}/evidence/{sha256_hex}"


def certification_uri(cert_id: str, *, id_base: str) -> str:
    return f"{_base(id_base)}/certification/{cert_id}"


def document_uri(doc_type: str, number: str, *, id_base: str) -> str:
    """A reference document (bill of lading, despatch advice, ...) as a business transaction URI."""
    return f"{_base(id_base)}/doc/{doc_type}/{number}"


def kind_uri(kind: str) -> str:
    return NS + kind


# --- model → EPCIS -----------------------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _quantity(epc_class: str, quantity: Quantity | None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": epc_class}
    if quantity is not None:
        element["quantity"] = quantity.value
        element["uom"] = quantity.uom.value
    return element


def _sensor_list(readings: Sequence[TemperatureReading]) -> list[dict[str, Any]]:
    return [
        {
            "sensorReport": [
                {"type": "Temperature", "time": _time(t.time), "value": t.celsius, "uom": "CEL"}
                for t in readings
            ]
        }
    ]


def _ilmd(crop: str, variety: str | None) -> dict[str, Any]:
    ilmd: dict[str, Any] = {"tt:crop": crop}
    if variety is not None:
        ilmd["tt:variety"] = variety
    return ilmd


def to_epcis(event: Event, *, id_base: str, gtins: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The event as an EPCIS 2.0 JSON-LD event (no ``@context``: it belongs to the enclosing document).

    ``gtins`` maps lot codes to the GTIN of their product; a packing's outputs take the packing's own GTIN.
    """
    base = _base(id_base)
    known: Mapping[str, str] = gtins or {}

    def lot(code: str, gtin: str | None = None) -> str:
        return lot_class_uri(code, id_base=base, gtin=gtin or known.get(code))

    def lots(items: Sequence[LotQuantity], gtin: str | None = None) -> list[dict[str, Any]]:
        return [_quantity(lot(i.lot_code, gtin), i.quantity) for i in items]

    def where(place_id: str) -> dict[str, str]:
        return {"id": place_uri(place_id, id_base=base)}

    place = where(event.place.id)
    body: dict[str, Any] = {
        "type": "TransformationEvent" if isinstance(event, Packing) else "ObjectEvent",
        "eventID": f"urn:uuid:{event.event_id}",
        "eventTime": _time(event.event_time),
        "eventTimeZoneOffset": _offset(event.event_time),
    }
    ext: dict[str, Any] = {}
    if isinstance(event, Planting):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), None)],
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            readPoint=place,
            bizLocation=where(event.plot_id),
            ilmd=_ilmd(event.crop, event.variety),
        )
        ext["tt:areaRai"] = event.area_rai
        if event.authority is not None:
            ext["tt:authority"] = party_uri(event.authority, id_base=base)
    elif isinstance(event, Harvest):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), event.quantity)],
            action="ADD",
            bizStep="creating_class_instance",
            disposition="active",
            readPoint=place,
            bizLocation=where(event.plot_id),
            ilmd=_ilmd(event.crop, event.variety),
        )
    elif isinstance(event, Cooling):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), event.quantity)],
            action="OBSERVE",
            bizStep="storing",
            disposition="active",
            readPoint=place,
            bizLocation=place,
        )
        if event.temperatures:
            body["sensorElementList"] = _sensor_list(event.temperatures)
        ext["tt:coolingMethod"] = event.method.value
    elif isinstance(event, Grading):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), event.quantity)],
            action="OBSERVE",
            bizStep="inspecting",
            disposition=event.disposition,
            readPoint=place,
            bizLocation=place,
        )
        ext["tt:grade"] = event.grade
    elif isinstance(event, Packing):
        body.update(
            inputQuantityList=lots(event.inputs),
            outputQuantityList=lots(event.outputs, event.gtin),
            bizStep="creating_class_instance",
            disposition="active",
            readPoint=place,
            bizLocation=place,
        )
        if event.gtin is not None:
            ext["tt:gtin"] = event.gtin
    elif isinstance(event, Transport):
        biz_step, disposition = _LEGS[event.leg]
        body.update(
            quantityList=lots(event.items),
            action="OBSERVE",
            bizStep=biz_step,
            disposition=disposition,
            readPoint=place,
        )
        if event.leg == "receive":
            body["bizLocation"] = where(event.destination)
        if event.documents:
            body["bizTransactionList"] = [
                {"type": d.type, "bizTransaction": document_uri(d.type, d.number, id_base=base)}
                for d in event.documents
            ]
        sources = [{"type": "location", "source": place_uri(event.source, id_base=base)}]
        destinations = [{"type": "location", "destination": place_uri(event.destination, id_base=base)}]
        if event.owner_from is not None and event.owner_to is not None:
            sources.append({"type": "owning_party", "source": party_uri(event.owner_from, id_base=base)})
            destinations.append(
                {"type": "owning_party", "destination": party_uri(event.owner_to, id_base=base)}
            )
        body["sourceList"] = sources
        body["destinationList"] = destinations
        if event.temperatures:
            body["sensorElementList"] = _sensor_list(event.temperatures)
        if event.vehicle is not None:
            ext["tt:vehicle"] = event.vehicle
    elif isinstance(event, Certification):
        body["certificationInfo"] = certification_uri(event.cert_id, id_base=base)
        body.update(
            quantityList=[_quantity(lot(event.lot_code), None)],
            action="OBSERVE",
            bizStep="inspecting",
            disposition="conformant",
            readPoint=place,
        )
        ext.update(
            {
                "tt:authority": party_uri(event.authority, id_base=base),
                "tt:officer": event.officer,
                "tt:standard": event.standard,
                "tt:certificateHash": event.certificate_hash,
                "tt:expires": event.expires,
                "tt:nonce": event.nonce,
                "tt:deadline": event.deadline,
                "tt:signature": event.signature,
            }
        )
    elif isinstance(event, Revocation):
        body["certificationInfo"] = certification_uri(event.cert_id, id_base=base)
        body.update(
            quantityList=[_quantity(lot(event.lot_code), None)],
            action="OBSERVE",
            bizStep="inspecting",
            disposition="non_conformant",
            readPoint=place,
        )
        ext["tt:reason"] = event.reason
    else:  # pragma: no cover - the union is exhaustive
        raise TypeError(f"not an event: {event!r}")

    body["tt:kind"] = kind_uri(event.kind)
    body["tt:actor"] = party_uri(event.actor, id_base=base)
    if event.place.lat is not None and event.place.lon is not None:
        body["tt:lat"] = event.place.lat
        body["tt:lon"] = event.place.lon
    body.update(ext)
    if event.evidence:
        body["tt:evidence"] = [evidence_uri(e, id_base=base) for e in event.evidence]
    if event.prev:
        body["tt:prev"] = [HASH_PREFIX + p.removeprefix("0x") + HASH_SUFFIX for p in event.prev]
    if event.note is not None:
        body["tt:note"] = event.note
    return body


# --- EPCIS → model -----------------------------------------------------------------------------------------


def _segment(uri: object, collection: str) -> tuple[str, str]:
    """``(id_base, code)`` of a URI ``{id_base}/{collection}/{code}``."""
    if not isinstance(uri, str):
        raise ValueError(f"expected a {collection} URI, got {uri!r}")
    base, sep, code = uri.rpartition(f"/{collection}/")
    if not sep or not base or not code or "/" in code:
        raise ValueError(f"not a {collection} URI: {uri!r}")
    return base, code


def _code(uri: object, collection: str) -> str:
    return _segment(uri, collection)[1]


def _place(uri: object) -> str:
    """The place code (or GLN) of a place URI."""
    if isinstance(uri, str) and (gln := parse_gln_uri(uri)) is not None:
        return gln
    return _code(uri, "place")


def _lot(uri: object) -> tuple[str, str | None]:
    """``(lot code, GTIN or None)`` of a lot class URI."""
    if isinstance(uri, str) and (parsed := parse_lot_uri(uri)) is not None:
        return parsed[1], parsed[0]
    return _code(uri, "lot"), None


def _quantities(elements: object, gtins: dict[str, str]) -> list[dict[str, Any]]:
    if not isinstance(elements, list):
        raise ValueError(f"expected a quantity list, got {elements!r}")
    out = []
    for element in elements:
        code, gtin = _lot(element["epcClass"])
        if gtin:
            gtins[code] = gtin
        item: dict[str, Any] = {"lot_code": code}
        if "quantity" in element:
            item["quantity"] = {"value": element["quantity"], "uom": element.get("uom", "KGM")}
        out.append(item)
    return out


def _only(items: list[dict[str, Any]]) -> dict[str, Any]:
    if len(items) != 1:
        raise ValueError("expected exactly one lot in quantityList")
    return items[0]


def _readings(ev: Mapping[str, Any]) -> list[dict[str, Any]]:
    reports = [r for element in ev.get("sensorElementList", []) for r in element["sensorReport"]]
    return [{"time": datetime.fromisoformat(r["time"]), "celsius": r["value"]} for r in reports]


def _typed(elements: object, member: str, kind: str) -> list[str]:
    if not isinstance(elements, list):
        raise ValueError(f"expected a list of {member} elements")
    return [str(e[member]) for e in elements if e.get("type") == kind]


def _fields(ev: Mapping[str, Any], gtins: dict[str, str]) -> dict[str, Any]:
    kind_iri = ev["tt:kind"]
    if not isinstance(kind_iri, str) or not kind_iri.startswith(NS):
        raise ValueError(f"not an event kind of this service: {kind_iri!r}")
    kind = kind_iri[len(NS) :]
    event_id = ev["eventID"]
    if not isinstance(event_id, str) or not event_id.startswith("urn:uuid:"):
        raise ValueError(f"eventID must be urn:uuid:…, got {event_id!r}")
    place: dict[str, Any] = {"id": _place(ev["readPoint"]["id"])}
    if "tt:lat" in ev or "tt:lon" in ev:
        place.update(lat=ev.get("tt:lat"), lon=ev.get("tt:lon"))
    data: dict[str, Any] = {
        "kind": kind,
        "event_id": uuid.UUID(event_id.removeprefix("urn:uuid:")),
        "event_time": datetime.fromisoformat(ev["eventTime"]),
        "actor": _code(ev["tt:actor"], "party"),
        "place": place,
        "evidence": tuple(_code(u, "evidence") for u in ev.get("tt:evidence", [])),
        "prev": tuple(_hex(p) for p in ev.get("tt:prev", [])),
        "note": ev.get("tt:note"),
    }
    if kind in ("planting", "harvest"):
        item = _only(_quantities(ev["quantityList"], gtins))
        ilmd = ev["ilmd"]
        data.update(
            lot_code=item["lot_code"],
            plot_id=_place(ev["bizLocation"]["id"]),
            crop=ilmd["tt:crop"],
            variety=ilmd.get("tt:variety"),
        )
        if kind == "planting":
            data["area_rai"] = ev["tt:areaRai"]
            if "tt:authority" in ev:
                data["authority"] = _code(ev["tt:authority"], "party")
        else:
            data["quantity"] = item.get("quantity")
    elif kind == "cooling":
        item = _only(_quantities(ev["quantityList"], gtins))
        data.update(
            lot_code=item["lot_code"],
            quantity=item.get("quantity"),
            method=ev["tt:coolingMethod"],
            temperatures=_readings(ev),
        )
    elif kind == "grading":
        item = _only(_quantities(ev["quantityList"], gtins))
        data.update(
            lot_code=item["lot_code"],
            grade=ev["tt:grade"],
            quantity=item.get("quantity"),
            disposition=ev["disposition"],
        )
    elif kind == "packing":
        data.update(
            inputs=_quantities(ev["inputQuantityList"], gtins),
            outputs=_quantities(ev["outputQuantityList"], gtins),
            gtin=ev.get("tt:gtin"),
        )
    elif kind == "transport":
        legs = {step: leg for leg, (step, _) in _LEGS.items()}
        owners_from = _typed(ev["sourceList"], "source", "owning_party")
        owners_to = _typed(ev["destinationList"], "destination", "owning_party")
        data.update(
            leg=legs.get(ev["bizStep"], ev["bizStep"]),
            items=_quantities(ev["quantityList"], gtins),
            source=_place(_typed(ev["sourceList"], "source", "location")[0]),
            destination=_place(_typed(ev["destinationList"], "destination", "location")[0]),
            vehicle=ev.get("tt:vehicle"),
            temperatures=_readings(ev),
            documents=[
                {"type": d["type"], "number": _document_number(d["bizTransaction"], d["type"])}
                for d in ev.get("bizTransactionList", [])
            ],
            owner_from=_code(owners_from[0], "party") if owners_from else None,
            owner_to=_code(owners_to[0], "party") if owners_to else None,
        )
    elif kind == "certification":
        data.update(
            lot_code=_only(_quantities(ev["quantityList"], gtins))["lot_code"],
            authority=_code(ev["tt:authority"], "party"),
            officer=ev["tt:officer"],
            standard=ev["tt:standard"],
            certificate_hash=ev["tt:certificateHash"],
            expires=ev["tt:expires"],
            nonce=ev["tt:nonce"],
            deadline=ev["tt:deadline"],
            signature=ev["tt:signature"],
            cert_id=_code(ev["certificationInfo"], "certification"),
        )
    elif kind == "revocation":
        data.update(
            lot_code=_only(_quantities(ev["quantityList"], gtins))["lot_code"],
            cert_id=_code(ev["certificationInfo"], "certification"),
            reason=ev["tt:reason"],
        )
    return data


def _document_number(uri: object, doc_type: str) -> str:
    return _code(uri, f"doc/{doc_type}")


def _hex(ni: object) -> str:
    if not isinstance(ni, str) or not ni.startswith(HASH_PREFIX) or not ni.endswith(HASH_SUFFIX):
        raise ValueError(f"tt:prev must hold CBV 2.0 event hash IDs, got {ni!r}")
    return "0x" + ni[len(HASH_PREFIX) : -len(HASH_SUFFIX)]


def _first_difference(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> str:
    for key in list(expected) + [k for k in actual if k not in expected]:
        if expected.get(key) != actual.get(key):
            return f"{key}: expected {expected.get(key)!r}, found {actual.get(key)!r}"
    return "member order"


def from_epcis(epcis_event: Mapping[str, Any]) -> Event:
    """The event an EPCIS body (as built by ``to_epcis``) records: ``from_epcis(to_epcis(e)) == e``.

    Parse the JSON with ``parse_float=Decimal`` (``codec.loads``). A body that ``to_epcis`` would not have
    built exactly so (an extra member, a changed URI, text with spaces around it) is refused with
    ``ValueError``, so the model never shows less than what was hashed. Model validation errors are
    pydantic's ``ValidationError`` (also a ``ValueError``).
    """
    gtins: dict[str, str] = {}
    try:
        data = _fields(epcis_event, gtins)
        id_base = _segment(epcis_event["tt:actor"], "party")[0]
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an EPCIS event of this service: missing or malformed {exc}") from None
    event = EVENT_ADAPTER.validate_python(data)
    rebuilt = to_epcis(event, id_base=id_base, gtins=gtins)
    if rebuilt != dict(epcis_event):
        raise ValueError(f"EPCIS body is not in canonical form ({_first_difference(rebuilt, epcis_event)})")
    return event


_MEMBER_ORDER = (
    "type",
    "eventID",
    "eventTime",
    "eventTimeZoneOffset",
    "certificationInfo",
    "epcList",
    "quantityList",
    "inputQuantityList",
    "outputQuantityList",
    "action",
    "bizStep",
    "disposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
)
_TYPED_LISTS = ("bizTransactionList", "sourceList", "destinationList")


def in_canonical_order(epcis_event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with its members in EPCIS order and ``type`` first in source/destination elements.

    Our hash does not depend on member order, but GS1's reference tool renders a bizTransaction, source or
    destination element in the order its members are written, and the CBV vectors put ``type`` first. A body
    read back from storage has sorted keys (``source`` before ``type``), so exports must pass through here
    and be written by a serialiser that keeps this order.
    """
    ordered = {k: epcis_event[k] for k in _MEMBER_ORDER if k in epcis_event}
    ordered.update(epcis_event)  # the others, in the order they came (those already in keep their place)
    for key in _TYPED_LISTS:
        elements = ordered.get(key)
        if isinstance(elements, list):
            ordered[key] = [
                {"type": e["type"], **e} if isinstance(e, Mapping) and "type" in e else e for e in elements
            ]
    return ordered


def epcis_document(
    events: Sequence[Mapping[str, Any]],
    *,
    created: datetime,
    master_data: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An ``EPCISDocument`` of ``events`` (bodies from ``to_epcis``), valid against the EPCIS 2.0 schema.

    Events are put in canonical member order (see ``in_canonical_order``); serialise the document without
    sorting keys so that GS1's reference tool computes the same hashes as ``hashing.event_hash``.
    ``master_data`` (a ``vocabularyList``, see ``vocabulary_list``) goes in
    ``epcisHeader.epcisMasterData``: the EPCIS 2.0.0 context defines no term for it, so JSON-LD processing
    (and GS1's hash tool, which expands the whole document) never sees it, and no event hash depends on it.
    """
    if created.utcoffset() is None:
        raise ValueError("creationDate needs a time zone")
    document: dict[str, Any] = {
        "@context": copy.deepcopy(EPCIS_CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds"),
    }
    if master_data:
        document["epcisHeader"] = {"epcisMasterData": {"vocabularyList": [dict(v) for v in master_data]}}
    document["epcisBody"] = {"eventList": [in_canonical_order(e) for e in events]}
    return document


def with_event_hash_id(epcis_event: Mapping[str, Any], event_hash: str) -> dict[str, Any]:
    """The event with its CBV 2.0 Event Hash ID (``ni:///sha-256;…?ver=CBV2.0``) as its ``eventID``.

    CBV 2.0 §8.9 leaves ``eventID`` out of the pre-hash string, so the ID names the very hash that was
    anchored and recomputes from the exported event alone (GS1's reference tool does the same). The stored
    body keeps its ``urn:uuid:`` ID; only exports carry the hash ID.
    """
    ni = event_hash if event_hash.startswith(HASH_PREFIX) else hash_ni(event_hash)
    return {k: (ni if k == "eventID" else v) for k, v in epcis_event.items()}


# --- master data (epcisHeader.epcisMasterData) ------------------------------------------------------------

VTYPE_LOCATION: Final = "urn:epcglobal:epcis:vtype:BusinessLocation"
VTYPE_CLASS: Final = "urn:epcglobal:epcis:vtype:EPCClass"
VTYPE_PARTY: Final = "urn:epcglobal:epcis:vtype:Party"
"""The vocabulary type EPCIS 2.0 queries use for parties (``EQ_ATTR`` on ``PartyID``), as GDST's and
OpenTraceability's master data do."""
MDA: Final = "urn:epcglobal:cbv:mda#"
"""CBV master data attributes (``name``, ``streetAddressOne``, ``city``, ``state``, ``postalCode``,
``countryCode``, ``latitude``, ``longitude``; for classes ``descriptionShort``, ``lotNumber``,
``countryOfOrigin``). ``phone`` is not in the CBV: it is the attribute GDST (and OpenTraceability) read a
business phone from, in the same namespace."""


@dataclass(frozen=True)
class Bilingual:
    """A text in English and Thai (either may be missing)."""

    en: str | None
    th: str | None


@dataclass(frozen=True)
class LocationMaster:
    """What a place URI stands for: never a person (a field is named by its code and village)."""

    uri: str
    kind: str
    name: Bilingual
    street: Bilingual
    city: Bilingual
    state: Bilingual
    country: str
    lat: Decimal | None = None
    lon: Decimal | None = None
    postal_code: str | None = None
    operator: str | None = None  # the party URI of the business or office answering for the place
    authority: str | None = None  # the party URI of the อปท. the place lies in


@dataclass(frozen=True)
class PartyMaster:
    """What a party URI stands for. A farmer (or an officer) has no address or phone of their own: only
    their kind and the authority they belong to; a business or an authority has its public contact."""

    uri: str
    kind: str
    name: Bilingual
    address: Bilingual
    country: str | None
    phone: str | None
    authority: str | None = None


@dataclass(frozen=True)
class ClassMaster:
    """What a lot (an EPC class) is: product, commodity, variety."""

    uri: str
    lot_code: str
    product: Bilingual
    crop: str
    varieties: tuple[str, ...] = ()
    gtin: str | None = None
    country_of_origin: str | None = "TH"


def _attr(attribute_id: str, value: object) -> dict[str, Any]:
    return {"id": attribute_id, "attribute": value}


def _texts(name: str, text: Bilingual) -> list[dict[str, Any]]:
    """``mda#{name}`` in English as a plain string (what any EPCIS tool reads), and ``tt:{name}Th`` in Thai
    as a JSON-LD language-tagged value, so a reader knows the language without knowing our names."""
    out = []
    if text.en:
        out.append(_attr(MDA + name, text.en))
    if text.th:
        out.append(_attr(f"{NS}{name}Th", {"@value": text.th, "@language": "th"}))
    return out


def _optional(attribute_id: str, value: object | None) -> list[dict[str, Any]]:
    return [] if value is None or value == "" else [_attr(attribute_id, value)]


def location_element(place: LocationMaster) -> dict[str, Any]:
    """A ``BusinessLocation`` vocabulary element."""
    attributes = [
        *_texts("name", place.name),
        *_texts("streetAddressOne", place.street),
        *_texts("city", place.city),
        *_texts("state", place.state),
        *_optional(MDA + "postalCode", place.postal_code),
        _attr(MDA + "countryCode", place.country),
        *_optional(MDA + "latitude", place.lat),
        *_optional(MDA + "longitude", place.lon),
        _attr(NS + "placeKind", place.kind),
        *_optional(NS + "operator", place.operator),
        *_optional(NS + "authority", place.authority),
    ]
    return {"id": place.uri, "attributes": attributes}


def party_element(party: PartyMaster) -> dict[str, Any]:
    """A ``Party`` vocabulary element."""
    attributes = [
        *_texts("name", party.name),
        *_texts("streetAddressOne", party.address),
        *_optional(MDA + "countryCode", party.country),
        *_optional(MDA + "phone", party.phone),
        _attr(NS + "partyKind", party.kind),
        *_optional(NS + "authority", party.authority),
    ]
    return {"id": party.uri, "attributes": attributes}


def class_element(lot: ClassMaster) -> dict[str, Any]:
    """An ``EPCClass`` vocabulary element: the lot's product, commodity (``tt:crop``, as in ``ilmd``) and
    variety (``tt:variety``; one attribute per variety of a merged lot)."""
    attributes = [
        *_texts("descriptionShort", lot.product),
        _attr(MDA + "lotNumber", lot.lot_code),
        *_optional(MDA + "countryOfOrigin", lot.country_of_origin),
        _attr(NS + "crop", lot.crop),
        *[_attr(NS + "variety", v) for v in lot.varieties],
        *_optional(NS + "gtin", lot.gtin),
    ]
    return {"id": lot.uri, "attributes": attributes}


def vocabulary_list(
    locations: Sequence[LocationMaster], parties: Sequence[PartyMaster], classes: Sequence[ClassMaster]
) -> list[dict[str, Any]]:
    """``epcisMasterData.vocabularyList``: one vocabulary per type that has elements, elements by URI."""
    vocabularies = [
        (VTYPE_LOCATION, [location_element(p) for p in sorted(locations, key=lambda p: p.uri)]),
        (VTYPE_PARTY, [party_element(p) for p in sorted(parties, key=lambda p: p.uri)]),
        (VTYPE_CLASS, [class_element(c) for c in sorted(classes, key=lambda c: c.uri)]),
    ]
    return [{"type": t, "vocabularyElementList": elements} for t, elements in vocabularies if elements]


@dataclass(frozen=True)
class NamedIdentifiers:
    """The codes of the places, parties and lots a set of events names (by URI)."""

    places: dict[str, str] = field(default_factory=dict)  # URI → place code (or GLN)
    parties: dict[str, str] = field(default_factory=dict)  # URI → party code
    lots: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # URI → (lot code, GTIN)


def named_identifiers(events: Iterable[Mapping[str, Any]]) -> NamedIdentifiers:
    """Every place (``readPoint``, ``bizLocation``, source/destination ``location``), party (``tt:actor``,
    ``tt:authority``, ``owning_party``) and lot class (any quantity list) the events name."""
    named = NamedIdentifiers()
    for ev in events:
        for key in ("readPoint", "bizLocation"):
            if isinstance(ev.get(key), Mapping):
                uri = ev[key]["id"]
                named.places[uri] = _place(uri)
        for key, member in (("sourceList", "source"), ("destinationList", "destination")):
            for element in ev.get(key, []):
                uri = element[member]
                if element.get("type") == "location":
                    named.places[uri] = _place(uri)
                elif element.get("type") == "owning_party":
                    named.parties[uri] = _code(uri, "party")
        for key in ("tt:actor", "tt:authority"):
            if isinstance(ev.get(key), str):
                named.parties[ev[key]] = _code(ev[key], "party")
        for key in ("quantityList", "inputQuantityList", "outputQuantityList"):
            for element in ev.get(key, []):
                named.lots[element["epcClass"]] = _lot(element["epcClass"])
    return named


__all__ = [
    "EPCIS_CONTEXT",
    "GS1_EPCIS_CONTEXT",
    "MDA",
    "NS",
    "PREFIX",
    "VTYPE_CLASS",
    "VTYPE_LOCATION",
    "VTYPE_PARTY",
    "Bilingual",
    "ClassMaster",
    "LocationMaster",
    "NamedIdentifiers",
    "PartyMaster",
    "certification_uri",
    "class_element",
    "document_uri",
    "epcis_document",
    "evidence_uri",
    "from_epcis",
    "in_canonical_order",
    "kind_uri",
    "location_element",
    "lot_class_uri",
    "named_identifiers",
    "party_element",
    "party_uri",
    "place_uri",
    "to_epcis",
    "vocabulary_list",
    "with_event_hash_id",
]
