"""FDA FSMA 204 (21 CFR Part 1 Subpart S, "Requirements for Additional Traceability Records for Certain
Foods"): what FDA's sortable spreadsheet needs to know about our events, as pure data.

* **Critical tracking events** and the sections that define their key data elements (KDEs):
  harvest → Harvesting §1.1325(a); cooling → Cooling (before initial packing) §1.1325(b); the first packing
  of raw harvested lots → Initial Packing §1.1330(a) (where the traceability lot code is first assigned,
  §1.1320(a)); any later packing, split or merge → Transformation §1.1350(a); a ship leg → Shipping
  §1.1340(a); a receive leg → Receiving §1.1345(a). Planting, grading and certification are not critical
  tracking events and give no row (they stay in the EPCIS export and the proof bundle). First land-based
  receiving (§1.1335) is for food from fishing vessels, which this service does not carry. A shipment of a
  raw lot before its initial packing is outside §1.1340 by §1.1340(c) (and its receipt by §1.1345(c)); it is
  still exported as a Shipping or Receiving row, since a row too many costs FDA a glance and a row too few
  can break a trace. The definitions (location description, product description, traceability lot code
  source and its reference) are §1.1310; the 24-hour sortable spreadsheet is §1.1455(c)(3)(ii).
* **The Food Traceability List** (FTL) membership of each crop in ``catalog.CROPS``, from FDA's list
  (https://www.fda.gov/food/food-safety-modernization-act-fsma/food-traceability-list): "Leafy greens
  (fresh)" names kale and lettuce among its examples (our organic vegetables are คะน้า and ผักกาดหอม);
  "Melons (fresh)" names watermelon; rice is on no entry. A vegetable crop is counted as leafy greens, the
  only vegetables the service's forms and demo carry: when unsure, keeping the FTL records costs a row, and
  leaving them out costs an importer a refused shipment.
* **A glossary** (Thai → English) for the free text our forms carry — varieties, grades, notes — so the
  "(English)" columns are filled; text not in it says so plainly (``NO_TRANSLATION``) instead of staying
  empty.
* **Pack size and style** read from a packing note ("แพ็กถุงละ 500 กรัม" → 500 g, bag), since the packing
  event has no field for them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from traceability.domain.catalog import CROPS, crop
from traceability.domain.events import BIZ_DOCUMENT_TYPES, CoolingMethod, MassUnit

# --- critical tracking events -------------------------------------------------------------------------------


class Cte(StrEnum):
    HARVESTING = "Harvesting"
    COOLING = "Cooling"
    INITIAL_PACKING = "Initial Packing"
    TRANSFORMATION = "Transformation"
    SHIPPING = "Shipping"
    RECEIVING = "Receiving"


RULE_SECTION: Final[dict[Cte, str]] = {
    Cte.HARVESTING: "21 CFR 1.1325(a)",
    Cte.COOLING: "21 CFR 1.1325(b)",
    Cte.INITIAL_PACKING: "21 CFR 1.1330(a)",
    Cte.TRANSFORMATION: "21 CFR 1.1350(a)",
    Cte.SHIPPING: "21 CFR 1.1340(a)",
    Cte.RECEIVING: "21 CFR 1.1345(a)",
}

CTE_MEANING: Final[dict[Cte, str]] = {
    Cte.HARVESTING: "a harvest at the farm (recorded by the grower)",
    Cte.COOLING: "active cooling of a harvested lot before initial packing",
    Cte.INITIAL_PACKING: (
        "the first packing of raw harvested lots; the traceability lot code of each packed lot is assigned"
        " here"
    ),
    Cte.TRANSFORMATION: "a later packing; split or merge of packed lots into new lots with new codes",
    Cte.SHIPPING: "a shipment leaving a location (one row per lot shipped)",
    Cte.RECEIVING: "a shipment arriving at a location (one row per lot received)",
}


def packing_cte(all_inputs_raw: bool) -> Cte:
    """A packing whose inputs are all raw harvested lots is the initial packing; any other is a
    transformation (§1.1320(a): both assign new traceability lot codes)."""
    return Cte.INITIAL_PACKING if all_inputs_raw else Cte.TRANSFORMATION


# --- the columns of the sortable spreadsheet ----------------------------------------------------------------

TLC = "Traceability Lot Code"
CTE = "Critical Tracking Event"
RULE = "Rule Section"
KDES = "KDEs Required for this CTE"
TLC_SOURCE = "TLC Source Location Description"
TLC_SOURCE_REF = "TLC Source Reference"
COMMODITY = "Commodity"
VARIETY = "Variety"
VARIETY_EN = "Variety (English)"
PRODUCT = "Product Description"
PRODUCT_EN = "Product Description (English)"
PACK_SIZE = "Pack Size"
PACK_STYLE = "Pack Style"
QUANTITY = "Quantity"
UOM = "Unit of Measure"
DATE = "Event Date (Local)"
TIME = "Event Time (Local)"
OFFSET = "UTC Offset"
LOC_NAME = "Location Name"
LOC_BUSINESS = "Location Business Name"
LOC_ADDRESS = "Location Address"
LOC_COUNTRY = "Location Country"
LOC_PHONE = "Location Business Phone"
FIELD = "Field or Growing Area"
FARM = "Harvest Farm Location Description"
HARVESTER = "Harvester Business Name and Phone"
HARVEST_DATE = "Harvest Date (Local)"
COOLING_LOCATION = "Cooling Location Description"
COOLING_DATE = "Cooling Date (Local)"
RECEIVED_DATE = "Date Received for Packing (Local)"
INPUTS = "Input Lots and Quantities Used"
SHIP_FROM = "Ship-From Location Description"
SHIP_TO = "Ship-To Location Description"
RECIPIENT = "Immediate Subsequent Recipient Location Description"
DOC_TYPE = "Reference Document Type"
DOC_NUMBER = "Reference Document Number"
FTL = "FTL Status"
BIZ_STEP = "EPCIS bizStep"
DISPOSITION = "EPCIS Disposition"
COOLING_METHOD = "Cooling Method"
NOTE = "Note"
NOTE_EN = "Note (English)"
EVENT_HASH = "Event Hash ID"

COLUMNS: Final[tuple[str, ...]] = (
    TLC,
    CTE,
    RULE,
    DATE,
    TIME,
    OFFSET,
    FTL,
    COMMODITY,
    VARIETY,
    VARIETY_EN,
    PRODUCT,
    PRODUCT_EN,
    PACK_SIZE,
    PACK_STYLE,
    QUANTITY,
    UOM,
    LOC_NAME,
    LOC_BUSINESS,
    LOC_ADDRESS,
    LOC_COUNTRY,
    LOC_PHONE,
    TLC_SOURCE,
    TLC_SOURCE_REF,
    FIELD,
    FARM,
    HARVESTER,
    HARVEST_DATE,
    COOLING_LOCATION,
    COOLING_DATE,
    RECEIVED_DATE,
    INPUTS,
    SHIP_FROM,
    SHIP_TO,
    RECIPIENT,
    DOC_TYPE,
    DOC_NUMBER,
    BIZ_STEP,
    DISPOSITION,
    COOLING_METHOD,
    NOTE,
    NOTE_EN,
    EVENT_HASH,
    KDES,
)
"""One table, the same columns on every row, so that FDA can sort and filter across events and lots."""

_EVERY_ROW = (TLC, CTE, RULE, DATE, TIME, OFFSET, FTL, DOC_TYPE, DOC_NUMBER, BIZ_STEP, EVENT_HASH)
_LOCATION = (LOC_NAME, LOC_BUSINESS, LOC_ADDRESS, LOC_COUNTRY, LOC_PHONE)
_PRODUCT = (PRODUCT, PRODUCT_EN, PACK_SIZE, PACK_STYLE)

REQUIRED_KDES: Final[dict[Cte, tuple[str, ...]]] = {
    # §1.1325(a)(1): recipient; commodity and variety; quantity and unit; the farm; the field; the date;
    # the reference document.
    Cte.HARVESTING: (
        *_EVERY_ROW,
        RECIPIENT,
        COMMODITY,
        VARIETY,
        VARIETY_EN,
        QUANTITY,
        UOM,
        *_LOCATION,
        FIELD,
    ),
    # §1.1325(b)(1): recipient; commodity and variety; quantity and unit; where cooled; the date; the farm
    # where it was harvested; the reference document.
    Cte.COOLING: (
        *_EVERY_ROW,
        RECIPIENT,
        COMMODITY,
        VARIETY,
        VARIETY_EN,
        QUANTITY,
        UOM,
        *_LOCATION,
        COOLING_LOCATION,
        COOLING_DATE,
        FARM,
    ),
    # §1.1330(a): what was received (commodity, variety, date, quantity per input lot), the farm, the field,
    # the harvester's business name and phone, the harvest date; (cooling where applicable); the new lot
    # code, its product description, quantity and unit, where it was packed (the TLC source) and the date.
    Cte.INITIAL_PACKING: (
        *_EVERY_ROW,
        COMMODITY,
        VARIETY,
        VARIETY_EN,
        RECEIVED_DATE,
        INPUTS,
        FARM,
        FIELD,
        HARVESTER,
        HARVEST_DATE,
        *_PRODUCT,
        QUANTITY,
        UOM,
        *_LOCATION,
        TLC_SOURCE,
    ),
    # §1.1350(a): each input lot with its product description and the quantity used; the new lot code,
    # where it was transformed (the TLC source), the date, product description, quantity and unit.
    Cte.TRANSFORMATION: (*_EVERY_ROW, INPUTS, *_PRODUCT, QUANTITY, UOM, *_LOCATION, TLC_SOURCE),
    # §1.1340(a): lot code, quantity and unit, product description, the immediate subsequent recipient, where
    # it was shipped from, the date, the TLC source, the reference document.
    Cte.SHIPPING: (
        *_EVERY_ROW,
        QUANTITY,
        UOM,
        *_PRODUCT,
        SHIP_TO,
        RECIPIENT,
        SHIP_FROM,
        *_LOCATION,
        TLC_SOURCE,
    ),
    # §1.1345(a): lot code, quantity and unit, product description, the immediate previous source, where it
    # was received, the date, the TLC source, the reference document.
    Cte.RECEIVING: (*_EVERY_ROW, QUANTITY, UOM, *_PRODUCT, SHIP_FROM, *_LOCATION, TLC_SOURCE),
}


# --- the Food Traceability List -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FtlFood:
    slug: str
    name: str


LEAFY_GREENS = FtlFood("leafy-greens", "Leafy greens (fresh)")
MELONS = FtlFood("melons", "Melons (fresh)")
FTL_FOODS: Final[dict[str, FtlFood]] = {f.slug: f for f in (LEAFY_GREENS, MELONS)}

CROP_FTL: Final[dict[str, FtlFood | None]] = {
    "organic-veg": LEAFY_GREENS,  # คะน้า (kale) and ผักกาดหอม (lettuce): FTL examples of leafy greens
    "vegetable": LEAFY_GREENS,
    "watermelon": MELONS,  # "Includes all types of melons, such as ... watermelon"
    "hom-mali-105": None,  # rice is not on the FTL
    "rice": None,
}
NOT_ON_FTL = "Not on FTL — exported for completeness"


def ftl_food(crop_code: str) -> FtlFood | None:
    return CROP_FTL.get(crop_code)


def ftl_status(crop_code: str) -> str:
    food = ftl_food(crop_code)
    return f"On FTL: {food.name}" if food else NOT_ON_FTL


def product_key(text: str) -> str:
    """A requested product in the form we compare: lower case, words joined by hyphens, no "(fresh)"."""
    key = re.sub(r"[\s_]+", "-", text.strip().lower())
    return re.sub(r"-?\(fresh\)$", "", key)


def accepted_products() -> tuple[str, ...]:
    """What ``product`` may be in a range request: a crop code of the catalogue or an FTL food."""
    return (*CROPS, *FTL_FOODS)


def product_crops(product: str) -> tuple[str, ...] | None:
    """The crop codes a requested product stands for (a crop code, or an FTL food such as "Leafy greens"),
    or None when it names nothing we know."""
    key = product_key(product)
    if key in CROPS:
        return (key,)
    food = FTL_FOODS.get(key)
    if food is not None:
        return tuple(c for c, f in CROP_FTL.items() if f == food)
    return None


def commodity(crop_code: str) -> str:
    return crop(crop_code).name_en


# --- English for Thai free text -----------------------------------------------------------------------------

NO_TRANSLATION = "[Thai text: no translation on file]"

GLOSSARY: Final[dict[str, str]] = {
    # varieties
    "ผักคะน้าและผักกาดหอม": "Chinese kale and lettuce",
    "ผักคะน้า": "Chinese kale",
    "คะน้า": "Chinese kale",
    "ผักกาดหอม": "Lettuce",
    "ผักกาดขาว": "Chinese cabbage",
    "ผักบุ้ง": "Water spinach",
    "ผักชี": "Coriander",
    "ขาวดอกมะลิ 105": "Khao Dawk Mali 105 (Hom Mali jasmine rice)",
    "กข15": "RD15 (Hom Mali jasmine rice)",
    "ตอร์ปิโด": "Torpedo",
    "กินรี": "Kinnaree",
    # grades
    "เกรด A": "Grade A",
    "เกรด B": "Grade B",
    "ตกเกรด": "Below grade (rejected)",
    "ตกเกรด ใบเหลือง": "Below grade: yellow leaves",
    "ตกเกรด เมล็ดลีบ": "Below grade: unfilled grains",
    "ตกเกรด ผลเล็กหรือแตก": "Below grade: small or cracked fruit",
    "เกรดส่งออก 3–5 กก./ผล": "Export grade, 3–5 kg per fruit",
    "ข้าวเปลือกหอมมะลิ ความชื้นไม่เกิน 15%": "Hom Mali paddy, moisture at most 15%",
    # notes
    "ปลูกแบบอินทรีย์ ใช้ปุ๋ยหมักในชุมชน": "Grown organically with the community's own compost",
    "ล้างและแช่น้ำเย็นก่อนคัด": "Washed and soaked in cold water before sorting",
    "คัดใบเหลืองและใบที่มีรอยแมลงออก": "Yellow and insect-damaged leaves sorted out",
    "แพ็กถุงละ 500 กรัม": "Packed in 500 g bags",
    "สีเป็นข้าวสาร บรรจุถุงสุญญากาศ 1 กก.": "Milled to white rice, packed in 1 kg vacuum bags",
    # products (catalogue names)
    **{c.name_th: c.name_en for c in CROPS.values()},
}
_GLOSSARY = {unicodedata.normalize("NFC", k).strip(): v for k, v in GLOSSARY.items()}
_THAI = re.compile(r"[\u0e00-\u0e7f]")


def has_thai(text: str) -> bool:
    return bool(_THAI.search(text))


def translation(text: str) -> str | None:
    """The glossary's English for a Thai text, or None when it has none (a text without Thai is its own)."""
    if not has_thai(text):
        return text
    return _GLOSSARY.get(unicodedata.normalize("NFC", text).strip())


def english(text: str | None) -> str:
    """English for recorded free text: the text itself when it has no Thai, the glossary's translation, or
    ``NO_TRANSLATION`` — never empty for a text that exists. None stays empty."""
    if text is None:
        return ""
    found = translation(text)
    return NO_TRANSLATION if found is None else found


# --- pack size and style ------------------------------------------------------------------------------------

BULK_SIZE = "bulk"
BULK_STYLE = "bulk (unpacked, sold by weight)"
PACK_NOT_RECORDED = "not recorded"

_CONTAINERS: Final[tuple[tuple[str, str], ...]] = (
    # longest first: "ถุงสุญญากาศ" before "ถุง"
    ("ถุงสุญญากาศ", "vacuum bag"),
    ("vacuum bag", "vacuum bag"),
    ("กระสอบ", "sack"),
    ("ตะกร้า", "basket"),
    ("กล่อง", "box"),
    ("ลัง", "carton"),
    ("ถุง", "bag"),
    ("carton", "carton"),
    ("crate", "crate"),
    ("sack", "sack"),
    ("box", "box"),
    ("bag", "bag"),
)
_SIZE = re.compile(r"(\d+(?:[.,]\d+)?)\s*(กิโลกรัม|กก\.?|kg|กรัม|g)(?![a-z])", re.IGNORECASE)
_SIZE_UNITS = {"กิโลกรัม": "kg", "กก.": "kg", "กก": "kg", "kg": "kg", "กรัม": "g", "g": "g"}


@dataclass(frozen=True)
class Pack:
    size: str
    style: str


def pack_from_note(note: str | None) -> Pack | None:
    """Pack size and style a packing note states ("แพ็กถุงละ 500 กรัม" → 500 g, bag), or None."""
    if not note:
        return None
    text = unicodedata.normalize("NFC", note)
    lowered = text.lower()
    style = next((name for word, name in _CONTAINERS if word in lowered), None)
    match = _SIZE.search(text)
    size = f"{match.group(1).replace(',', '.')} {_SIZE_UNITS[match.group(2).lower()]}" if match else None
    if style is None and size is None:
        return None
    return Pack(size or PACK_NOT_RECORDED, style or PACK_NOT_RECORDED)


# --- the legend ---------------------------------------------------------------------------------------------

UNIT_MEANING: Final[dict[str, str]] = {
    MassUnit.KGM.value: "kilogram",
    MassUnit.GRM.value: "gram",
    MassUnit.TNE.value: "tonne (metric ton; 1000 kg)",
}
BIZ_STEP_MEANING: Final[dict[str, str]] = {
    "creating_class_instance": "harvest (ObjectEvent ADD) or packing/transformation (TransformationEvent)",
    "storing": "cooling (CBV 2.0 has no cooling step; the event's tt:coolingMethod says how)",
    "shipping": "shipping",
    "receiving": "receiving",
}
DISPOSITION_MEANING: Final[dict[str, str]] = {
    "active": "the lot exists and may be used",
    "in_transit": "shipped and on its way",
    "in_progress": "received and being handled at the receiving location",
}
DOCUMENT_MEANING: Final[dict[str, str]] = {
    "bol": "bill of lading",
    "desadv": "despatch advice (advance ship notice)",
    "recadv": "receiving advice",
    "po": "purchase order",
    "inv": "invoice",
    "cert": "certificate",
    "testres": "test result",
}
assert set(DOCUMENT_MEANING) == set(BIZ_DOCUMENT_TYPES)
ELECTRONIC_RECORD = "EPCIS event"
COOLING_MEANING: Final[dict[str, str]] = {
    CoolingMethod.HYDRO.value: "hydrocooling",
    CoolingMethod.FORCED_AIR.value: "forced-air cooling",
    CoolingMethod.VACUUM.value: "vacuum cooling",
    CoolingMethod.ICE.value: "icing",
    CoolingMethod.ROOM.value: "room cooling",
    CoolingMethod.OTHER.value: "another active cooling method",
}
COUNTRY_NAMES: Final[dict[str, str]] = {"TH": "Thailand", "US": "United States"}


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code.upper(), code)


def legend_lines(title: str) -> list[str]:
    """The header block: lines starting with ``#`` (no commas or quotes, so each line stays one cell in a
    spreadsheet and one line for a reader that skips comments), to be followed by one blank line."""

    def codes(meanings: dict[str, str]) -> str:
        return "; ".join(f"{k} = {v}" for k, v in meanings.items())

    body = [
        "How to read: these lines starting with # and the blank line after them are the legend. The table"
        " starts at the header row below. Python: csv.DictReader(line for line in f if line.strip() and not"
        " line.startswith('#')); pandas: read_csv with comment='#'; Excel: sort or filter from the header row"
        " (the blank line keeps the legend out of the table).",
        title,
        "One row per critical tracking event (CTE) and traceability lot as 21 CFR 1.1325 to 1.1350 define"
        " them. Planting; grading and certification are not CTEs and give no row (see the EPCIS export).",
        "CTEs: "
        + "; ".join(f"{c.value} ({RULE_SECTION[c]}) = {CTE_MEANING[c]}" for c in Cte)
        + ". The column '"
        + KDES
        + "' names the columns that rule requires for the row's CTE; other columns may be empty.",
        "Dates and times are LOCAL to where the event happened (the UTC offset column gives the zone;"
        " +07:00 = Thailand). Dates are YYYY-MM-DD; times HH:MM:SS.",
        f"Units of measure (UN/ECE Recommendation 20): {codes(UNIT_MEANING)}.",
        "Location descriptions: location name; operating business; address; country; business phone. The"
        " phone is the community enterprise's or the local administrative organisation's office: never a"
        " farmer's.",
        "TLC source: where the traceability lot code was assigned (the farm for a harvested lot; the packing"
        " location for a packed lot). TLC source reference: the web address of that location's master data.",
        "Reference documents (GS1 CBV 2.0 business transaction types): "
        + codes(DOCUMENT_MEANING)
        + f"; {ELECTRONIC_RECORD} = no paper document: the electronic record itself whose number is its"
        " Event Hash ID.",
        "Event Hash ID: the GS1 CBV 2.0 hash of the EPCIS event (ni:///sha-256;...?ver=CBV2.0) anchored on"
        " the blockchain; it finds the event in the EPCIS export and its proof.",
        f"EPCIS bizStep (GS1 CBV 2.0): {codes(BIZ_STEP_MEANING)}.",
        f"EPCIS disposition (GS1 CBV 2.0): {codes(DISPOSITION_MEANING)}.",
        f"Cooling methods: {codes(COOLING_MEANING)}.",
        f"Pack size and style: '{BULK_SIZE}' = a raw lot not packed (by weight); '{PACK_NOT_RECORDED}' = not"
        " stated in the packing record.",
        f"FTL status: 'On FTL: <food>' = on FDA's Food Traceability List; '{NOT_ON_FTL}' = outside the rule"
        " (e.g. rice).",
        "Country codes: ISO 3166-1 alpha-2 ("
        + "; ".join(f"{k} = {v}" for k, v in COUNTRY_NAMES.items())
        + ").",
        "Thai free text is kept as recorded with an English column beside it; '"
        + NO_TRANSLATION
        + "' marks text with no translation on file.",
    ]
    return ["# " + " ".join(line.replace(",", ";").replace('"', "'").split()) for line in body]


def kde_list(cte: Cte) -> str:
    """The cell naming the columns the rule requires for ``cte``."""
    return "; ".join(REQUIRED_KDES[cte])


def join(parts: Sequence[str | None], sep: str = "; ") -> str:
    return sep.join(p for p in parts if p)
