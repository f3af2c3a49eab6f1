"""JSON for EPCIS bodies and proof bundles with exact decimals.

EPCIS requires quantities to be JSON numbers; floats would round them. ``loads`` reads every non-integer
number as ``Decimal`` and ``dumps`` writes a ``Decimal`` as its exact digits (never in exponent form), so
a body survives any number of round trips byte for byte. Output is compact and UTF-8 kept as is (Thai text
stays readable). Members keep the order they were given: GS1's reference hash tool renders source,
destination and bizTransaction elements in written order, so EPCIS bodies are stored and exported in
canonical member order (``epcis.in_canonical_order``) and must never be re-sorted.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from itertools import accumulate
from json.encoder import encode_basestring
from typing import Any


def _number(d: Decimal) -> str:
    if not d.is_finite():
        raise ValueError(f"not a finite number: {d}")
    text = format(d, "f")
    return text


# ``encode_basestring`` is what ``json.dumps(text, ensure_ascii=False)`` ends in (the C one when built),
# called directly: a body has dozens of strings, and json.dumps' own set-up per call cost more than the
# escaping itself.
_string = encode_basestring


def _compact(value: Any) -> str:
    """``value`` as compact JSON: the exact types EPCIS bodies are built of first, anything else as
    ``_encode`` writes it (same bytes either way)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        return (
            "{"
            + ",".join(
                [_string(k if type(k) is str else str(k)) + ":" + _compact(v) for k, v in value.items()]
            )
            + "}"
        )
    if kind is list:
        return "[" + ",".join([_compact(v) for v in value]) + "]"
    if kind is Decimal:
        return _number(value)
    if kind is int:
        return int.__repr__(value)
    out: list[str] = []
    _encode(value, out, None, 0)
    return "".join(out)


def _encode(value: Any, out: list[str], indent: str | None, level: int) -> None:
    if isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, bool) or value is None:
        out.append("true" if value else "false" if value is not None else "null")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, float):
        raise TypeError("floats are refused: use Decimal for quantities")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        if indent is None:
            out.append("{" + ",".join([_string(str(k)) + ":" + _compact(v) for k, v in value.items()]) + "}")
            return
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append("\n" + indent * (level + 1))
            out.append(_string(str(k)))
            out.append(": ")
            _encode(v, out, indent, level + 1)
        out.append("\n" + indent * level)
        out.append("}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        if indent is None:
            out.append("[" + ",".join([_compact(v) for v in value]) + "]")
            return
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            out.append("\n" + indent * (level + 1))
            _encode(v, out, indent, level + 1)
        out.append("\n" + indent * level)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any, *, indent: int | None = None) -> str:
    if indent is None:
        return _compact(value)
    out: list[str] = []
    _encode(value, out, " " * indent, 0)
    return "".join(out)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def _plain_decimal(text: str) -> Decimal:
    if "e" in text or "E" in text:
        raise ValueError(
            f"the number {text} is in floating-point exponent form: write it in plain decimal notation "
            '(e.g. 12.5 or "12.5")'
        )
    return Decimal(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number this system accepts")


# How deep untrusted JSON may nest. Events and proof bundles nest fewer than 20 levels; the C decoder recurses
# once per level and, with the recursion limit a dependency raises (py_ecc sets 100,000), a few hundred
# thousand brackets overflow the thread's stack: a crash of the whole server, not an exception.
MAX_INPUT_DEPTH = 256
# A string, or an unterminated one up to the end: every match starts at a quote and never fails, so the
# scan is linear even on hostile text.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKET_STEP)


def check_depth(text: str | bytes, limit: int = MAX_INPUT_DEPTH) -> None:
    """``ValueError`` if the JSON ``text`` nests arrays and objects more than ``limit`` deep (brackets inside
    strings do not count); run before parsing untrusted input. Linear, at C speed for the scans."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > limit:
        raise ValueError(f"the JSON is nested more than {limit} levels deep")


def loads_input(text: str | bytes) -> Any:
    """Like :func:`loads`, for untrusted input: numbers written the way a float serialiser writes them
    (exponent form such as ``1.25e2``, and ``NaN``/``Infinity``) are refused with ``ValueError`` rather than
    read, because the value a client meant may already have been rounded through a binary float. JSON nested
    deeper than ``MAX_INPUT_DEPTH`` is refused with ``ValueError`` before it is parsed."""
    check_depth(text)
    return json.loads(text, parse_float=_plain_decimal, parse_constant=_no_constant)
