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
from decimal import Decimal
from typing import Any


def _number(d: Decimal) -> str:
    if not d.is_finite():
        raise ValueError(f"not a finite number: {d}")
    text = format(d, "f")
    return text


def _encode(value: Any, out: list[str], indent: str | None, level: int) -> None:
    if isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, bool) or value is None or isinstance(value, int | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, float):
        raise TypeError("floats are refused: use Decimal for quantities")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        items = list(value.items())
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(": " if indent is not None else ":")
            _encode(v, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            _encode(v, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any, *, indent: int | None = None) -> str:
    out: list[str] = []
    _encode(value, out, " " * indent if indent is not None else None, 0)
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


def loads_input(text: str | bytes) -> Any:
    """Like :func:`loads`, for untrusted input: numbers written the way a float serialiser writes them
    (exponent form such as ``1.25e2``, and ``NaN``/``Infinity``) are refused with ``ValueError`` rather than
    read, because the value a client meant may already have been rounded through a binary float."""
    return json.loads(text, parse_float=_plain_decimal, parse_constant=_no_constant)
