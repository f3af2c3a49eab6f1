"""GS1 keys and URIs: check digits, GTINs and GLNs, and the constrained canonical GS1 Digital Link URI.

``digital_link`` is the canonicalisation the CBV 2.0 event hash applies to identifiers (``hashing``): an EPC
URI (TDS 2.0: pure identity, class and pattern URIs) or any GS1 Digital Link URI becomes the constrained
Digital Link URI on ``https://id.gs1.org/``. ``lot_uri`` and ``gln_uri`` write the Digital Link URIs this
service puts into events for a product lot with a GTIN (AI 01 + AI 10) and for a place with a GLN (AI 414).
"""

from __future__ import annotations

import re
from collections.abc import Callable

GS1_HOST = "https://id.gs1.org/"


def check_digit(digits: str) -> int:
    """GS1 mod-10 check digit of a key without its check digit (weights 3, 1, 3, ... from the right)."""
    # Every other digit from the last, weight 3; the rest, weight 1 (a place's GLN is checked per event).
    total = 3 * sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2]))
    return -total % 10


def with_check_digit(digits: str) -> str:
    """``digits`` followed by their GS1 check digit."""
    return digits + str(check_digit(digits))


def gtin14(value: str) -> str:
    """A GTIN-8/12/13/14 with a valid check digit, as 14 digits (zero-padded on the left)."""
    digits = value.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        raise ValueError("a GTIN has 8, 12, 13 or 14 digits")
    if check_digit(digits[:-1]) != int(digits[-1]):
        raise ValueError(f"GTIN {digits} has a wrong check digit")
    return digits.zfill(14)


def is_gln(value: str) -> bool:
    """Whether ``value`` is a GLN: 13 ASCII digits whose last is the GS1 check digit of the others."""
    return (
        len(value) == 13 and value.isascii() and value.isdigit() and check_digit(value[:12]) == int(value[12])
    )


def lot_uri(gtin: str, lot: str) -> str:
    """The Digital Link URI of a lot of a product: ``https://id.gs1.org/01/{GTIN-14}/10/{lot}``."""
    return f"{GS1_HOST}01/{gtin14(gtin)}/10/{lot}"


def gln_uri(gln: str) -> str:
    """The Digital Link URI of a place identified by a GLN: ``https://id.gs1.org/414/{GLN}``."""
    if not is_gln(gln):
        raise ValueError(f"not a GLN (13 digits with a valid check digit): {gln!r}")
    return f"{GS1_HOST}414/{gln}"


_DL_LOT = re.compile(r"https://id\.gs1\.org/01/(\d{14})/10/([^/?#]+)")
_DL_GLN = re.compile(r"https://id\.gs1\.org/414/(\d{13})")


def parse_lot_uri(uri: str) -> tuple[str, str] | None:
    """``(GTIN-14, lot)`` of a URI written by ``lot_uri``, else None."""
    m = _DL_LOT.fullmatch(uri)
    return (m.group(1), m.group(2)) if m else None


def parse_gln_uri(uri: str) -> str | None:
    """The GLN of a URI written by ``gln_uri``, else None."""
    m = _DL_GLN.fullmatch(uri)
    return m.group(1) if m and is_gln(m.group(1)) else None


# --- EPC URIs and GS1 Digital Link URIs -------------------------------------------------------------------

# One character of a GS1 AI encodable character set 82 value in an EPC URI (percent-escaped where needed),
# and of a CPI component reference (character set 39).
_C = (
    r"(?:%2[125-9A-Fa-f]|%3[0-9A-Fa-f]|%4[1-9A-Fa-f]|%5[0-9AaFf]|%6[1-9A-Fa-f]|%7[0-9Aa]"
    r"|[!')(*+,.0-9:;=A-Za-z_-])"
)
_CPI = r"(?:%2[3dfDF]|%3[0-9]|%4[1-9A-Fa-f]|%5[0-9Aa]|[0-9A-Z-])"
_DL_ESCAPES = str.maketrans(
    {"!": "%21", "(": "%28", ")": "%29", "*": "%2A", "+": "%2B", ",": "%2C", ":": "%3A"}
)


_TWO_DOTS = r"\.\."


def _split(n: int, *, empty_reference: str = "") -> str:
    """Company prefix (6 to 12 digits), a dot and a reference, together ``n`` digits."""
    parts = [rf"\d{{{p}}}\.\d{{{n - p}}}" for p in range(6, 13)]
    if empty_reference:
        # GRAI, GDTI and their patterns: with a 12-digit company prefix GS1's reference implementation
        # expects two dots there (prefix, empty reference, then the usual separator on top).
        parts[-1] = r"\d{12}" + empty_reference
    return "(?:" + "|".join(parts) + ")"


def _gtin(cp: str, item_ref: str) -> str:
    raw = item_ref[:1] + cp + item_ref[1:]
    return raw + str(check_digit(raw))


def _gln(raw: str) -> str:
    return raw + str(check_digit(raw))


_Builder = Callable[[str, str, int], str]  # (uri, company prefix, index of the first dot) -> DL URI
_GS1 = GS1_HOST


def _sgtin(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}01/{_gtin(cp, u[dot + 1 : dot + 14 - len(cp)])}/21/{u[32:].translate(_DL_ESCAPES)}"


def _sscc(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}00/{_gln(u[dot + 1] + cp + u[dot + 2 :])}"


def _sgln(u: str, cp: str, dot: int) -> str:
    gln = _gln(cp + u[dot + 1 : dot + 13 - len(cp)])
    extension = u[30:]
    return f"{_GS1}414/{gln}" + ("" if extension == "0" else f"/254/{extension.translate(_DL_ESCAPES)}")


def _grai(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}8003/{_gln('0' + cp + u[dot + 1 : dot + 13 - len(cp)])}{u[30:].translate(_DL_ESCAPES)}"


def _giai(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}8004/{cp}{u[dot + 1 :].translate(_DL_ESCAPES)}"


def _gsrn(ai: str) -> _Builder:
    return lambda u, cp, dot: f"{_GS1}{ai}/{_gln(cp + u[dot + 1 :])}"


def _gdti(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}253/{_gln(cp + u[dot + 1 : dot + 13 - len(cp)])}{u[30:].translate(_DL_ESCAPES)}"


def _cpi(u: str, cp: str, dot: int) -> str:
    last = u.rfind(".")
    return f"{_GS1}8010/{(cp + u[dot + 1 : last]).translate(_DL_ESCAPES)}/8011/{u[last + 1 :]}"


def _sgcn(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}255/{_gln(cp + u[dot + 1 : dot + 13 - len(cp)])}{u[30:]}"


def _ginc(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}401/{cp}{u[dot + 1 :].translate(_DL_ESCAPES)}"


def _gsin(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}402/{_gln(cp + u[dot + 1 :])}"


def _itip(u: str, cp: str, dot: int) -> str:
    gtin = _gtin(cp, u[dot + 1 : dot + 14 - len(cp)])
    return f"{_GS1}8006/{gtin}{u[31:33]}{u[34:36]}/21/{u[37:].translate(_DL_ESCAPES)}"


def _upui(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}01/{_gtin(cp, u[dot + 1 : dot + 14 - len(cp)])}/235/{u[31:].translate(_DL_ESCAPES)}"


def _pgln(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}417/{_gln(cp + u[dot + 1 : dot + 13 - len(cp)])}"


def _lgtin(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}01/{_gtin(cp, u[dot + 1 : dot + 14 - len(cp)])}/10/{u[35:].translate(_DL_ESCAPES)}"


def _gtin_pattern(ai: str, extra: Callable[[str], str] = lambda u: "") -> _Builder:
    return lambda u, cp, dot: f"{_GS1}{ai}/{_gtin(cp, u[dot + 1 : dot + 14 - len(cp)])}{extra(u)}"


def _ref12_pattern(ai: str, zero: str = "") -> _Builder:
    return lambda u, cp, dot: f"{_GS1}{ai}/{_gln(zero + cp + u[dot + 1 : dot + 13 - len(cp)])}"


def _cpi_pattern(u: str, cp: str, dot: int) -> str:
    return f"{_GS1}8010/{(cp + u[dot + 1 : u.rfind('.')]).translate(_DL_ESCAPES)}"


def _cp_ref_alternatives(lengths: Callable[[int], str]) -> str:
    return "(?:" + "|".join(rf"\d{{{p}}}\.{lengths(p)}" for p in range(6, 13)) + ")"


# EPC URIs (TDS 2.0 section 6/7/8: EPC pure identity, EPC class and EPC pattern URIs) and how each maps to
# the constrained GS1 Digital Link URI. The prefix lengths are fixed, which the builders rely on.
_EPC_URIS: tuple[tuple[re.Pattern[str], _Builder], ...] = tuple(
    (re.compile(pattern), builder)
    for pattern, builder in (
        (rf"urn:epc:id:sgtin:{_split(13)}\.{_C}{{1,20}}", _sgtin),
        (rf"urn:epc:id:sscc:{_split(17)}", _sscc),
        (rf"urn:epc:id:sgln:{_split(12)}\.{_C}{{1,20}}", _sgln),
        (rf"urn:epc:id:grai:{_split(12, empty_reference=_TWO_DOTS)}\.{_C}{{1,16}}", _grai),
        (rf"urn:epc:id:giai:{_cp_ref_alternatives(lambda p: f'{_C}{{1,{30 - p}}}')}", _giai),
        (rf"urn:epc:id:gsrn:{_split(17)}", _gsrn("8018")),
        (rf"urn:epc:id:gsrnp:{_split(17)}", _gsrn("8017")),
        (rf"urn:epc:id:gdti:{_split(12, empty_reference=_TWO_DOTS)}{_C}{{1,20}}", _gdti),
        (rf"urn:epc:id:cpi:{_cp_ref_alternatives(lambda p: f'{_CPI}{{1,{30 - p}}}')}\.\d{{1,12}}", _cpi),
        (rf"urn:epc:id:sgcn:{_split(12)}\.\d{{1,12}}", _sgcn),
        (rf"urn:epc:id:ginc:{_cp_ref_alternatives(lambda p: f'{_C}{{1,{30 - p}}}')}", _ginc),
        (rf"urn:epc:id:gsin:{_split(16)}", _gsin),
        (rf"urn:epc:id:itip:{_split(13)}\.\d{{2}}\.\d{{2}}\.{_C}{{1,20}}", _itip),
        (rf"urn:epc:id:upui:{_split(13)}\.{_C}{{1,28}}", _upui),
        (rf"urn:epc:id:pgln:{_split(12)}", _pgln),
        (rf"urn:epc:class:lgtin:{_split(13)}\.{_C}{{1,20}}", _lgtin),
        (rf"urn:epc:idpat:sgtin:{_split(13)}\.\*", _gtin_pattern("01")),
        (rf"urn:epc:idpat:grai:{_split(12, empty_reference=_TWO_DOTS)}\.\*", _ref12_pattern("8003", "0")),
        (rf"urn:epc:idpat:gdti:{_split(12, empty_reference=_TWO_DOTS)}\.\*", _ref12_pattern("253")),
        (rf"urn:epc:idpat:sgcn:{_split(12, empty_reference=_TWO_DOTS)}\.\*", _ref12_pattern("255")),
        (rf"urn:epc:idpat:cpi:{_cp_ref_alternatives(lambda p: f'{_CPI}{{1,{30 - p}}}')}\.\*", _cpi_pattern),
        (
            rf"urn:epc:idpat:itip:{_split(13)}\.\d{{2}}\.\d{{2}}\.\*",
            _gtin_pattern("8006", lambda u: u[34:36] + u[37:39]),
        ),
        (rf"urn:epc:idpat:upui:{_split(13)}\.\*", _gtin_pattern("01")),
    )
)

_DL_KEYS = (
    "01|gtin|8006|itip|8010|cpid|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti|401|ginc"
    "|402|gsin|8003|grai|8004|giai"
)
_DL_CANDIDATE = re.compile(rf"https?:[^?#]*/(?:{_DL_KEYS})/\d{{4}}[^/]")
_SHORT_NAMES = (
    ("/gtin/", "/01/"), ("/itip/", "/8006/"), ("/cpid/", "/8010/"), ("/gln/", "/414/"), ("/party/", "/417/"),
    ("/gsrnp/", "/8017/"), ("/gsrn/", "/8018/"), ("/gcn/", "/255/"), ("/sscc/", "/00/"), ("/gdti/", "/253/"),
    ("/ginc/", "/401/"), ("/gsin/", "/402/"), ("/grai/", "/8003/"), ("/giai/", "/8004/"), ("/cpv/", "/22/"),
    ("/lot/", "/10/"), ("/ser/", "/21/"),
)  # fmt: skip
_GS1_HOST = r"https://id\.gs1\.org/"
_CANONICAL_HOST = re.compile(
    rf"{_GS1_HOST}(?:01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)/\d{{4}}[^/]"
)
_PRIMARY_KEYS = ("/00/", "/01/", "/253/", "/255/", "/401/", "/402/", "/414/", "/417/", "/8003/", "/8004/",
                 "/8006/", "/8010/", "/8017/", "/8018/")  # fmt: skip
_X = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"  # DL URI value character (safe subset)
_XS = r"[\x2F\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"  # ... or a slash
_TRAILING_CPV = re.compile(rf"{_GS1_HOST}(?:8006/\d{{18}}|01/\d{{14}})/22/{_X}{{0,20}}$")
_INNER_CPV = re.compile(rf"{_GS1_HOST}(?:8006/\d{{18}}|01/\d{{14}})/22/{_XS}{{0,20}}$")
_LOT_AND_SERIAL = re.compile(rf"{_GS1_HOST}(?:8006/\d{{18}}|01/\d{{14}})/10/{_X}{{0,20}}/21/{_X}{{0,20}}$")
_CONSTRAINED_DL = re.compile(
    _GS1_HOST
    + "(?:"
    + "|".join(
        (
            r"00/\d{18}",
            rf"01/\d{{14}}(?:/21/{_X}{{0,20}}|/10/{_X}{{0,20}}|/235/{_X}{{0,28}})?",
            rf"253/\d{{13}}{_X}{{0,17}}",
            r"255/\d{13}\d{0,12}",
            rf"401/{_X}{{0,30}}",
            r"402/\d{17}",
            rf"414/\d{{13}}(?:/254/{_X}{{0,20}})?",
            r"417/\d{13}",
            rf"8003/\d{{14}}{_X}{{0,16}}",
            rf"8004/{_X}{{0,30}}",
            rf"8006/\d{{18}}(?:/21/{_X}{{0,20}}|/10/{_X}{{0,20}})?",
            r"8010/[\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30}(?:/8011/\d{0,12})?",
            r"8017/\d{18}",
            r"8018/\d{18}",
        )
    )
    + ")$"
)


def digital_link(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link URI for an EPC URI or a GS1 Digital Link URI, else None.

    Constrained: host ``id.gs1.org``, short key names replaced by AIs, GTINs padded to 14 digits, no query
    string, no CPV, and a serial number instead of a lot number when both are present.
    """
    dot = uri.find(".")
    if dot < 0:
        return None
    if uri.startswith("urn:epc:"):
        for pattern, build in _EPC_URIS:
            if pattern.fullmatch(uri):
                cp = uri[uri.rfind(":", 0, dot) + 1 : dot]
                return build(uri, cp, dot)
        return None
    if not _DL_CANDIDATE.match(uri):
        return None
    uri = uri.split("?", 1)[0]
    for short, ai in _SHORT_NAMES:
        uri = uri.replace(short, ai)
    if not _CANONICAL_HOST.match(uri):
        for key in _PRIMARY_KEYS:
            at = uri.find(key)
            if at >= 0:
                uri = "https://id.gs1.org" + uri[at:]
                break
    m = re.match(rf"{_GS1_HOST}01/(\d*)", uri)
    if m is not None and len(m.group(1)) < 14:
        # Zero-pad GTIN-13/-12/-8 to GTIN-14 (at every "/01/" in the URI, as GS1's reference tool does).
        width = len(m.group(1))
        pad = "0" if width == 13 else "00" if width == 12 else "000000" if width >= 8 else ""
        uri = uri.replace("/01/", "/01/" + pad)
    # The CPV (AI 22) and lot/serial steps follow GS1's reference tool step by step, slicing included:
    # it produced the published vectors.
    after_cpv = uri[uri.find("/22/") + 4 :]
    if _TRAILING_CPV.match(uri):
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") : -1]
    if _INNER_CPV.match(uri):
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") :]
    if _LOT_AND_SERIAL.match(uri):
        after_lot = uri[uri.find("/10/") + 4 :]
        uri = uri[: uri.find("/10/")] + after_lot[after_lot.find("/") :]
    return uri if _CONSTRAINED_DL.match(uri) else None
