"""Origin risk as the pages show it: a lot's score, its level in words and each signal's key figures.

The signals' own sentences (``domain.risk``) already say in Thai and English what looks wrong. An officer
deciding which farm to visit first also wants the figures at a glance, side by side ("ไร่ละ 875 กก. · ปกติ
420 กก. · 1.8 เท่า"), so this module picks the few numbers that matter for each code from ``Signal.numbers``
and writes them in the page's language, with the units farmers use (กก., ไร่) and Thai month names. The
wording goes through the page's gettext catalog like every other page text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from babel.dates import get_month_names
from babel.numbers import format_decimal

from traceability.domain.risk import LotRisk, RiskCode, Signal

Gettext = Callable[[str], str]


def _n(value: Any, lang: str, places: int = 0) -> str:
    """A figure with thousands separators and at most ``places`` decimals (``1,234`` / ``1.8``)."""
    pattern = "#,##0" + ("." + "#" * places if places else "")
    return format_decimal(float(value), pattern, locale=lang)


def _month(month: int, lang: str) -> str:
    return str(get_month_names("abbreviated", locale=lang)[int(month)])


def _months(months: Sequence[int], lang: str) -> str:
    """Harvest months as a reader writes them: a run of consecutive months as ``พ.ย.–ธ.ค.``."""
    ordered = sorted(int(m) for m in months)
    if len(ordered) >= 12:
        return ""
    if len(ordered) > 1 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{_month(ordered[0], lang)}–{_month(ordered[-1], lang)}"
    return ", ".join(_month(m, lang) for m in ordered)


def _yield(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    return [
        _("%(kg)s kg per rai") % {"kg": _n(n["kg_per_rai"], lang)},
        _("usual %(kg)s kg") % {"kg": _n(n["expected_kg_per_rai"], lang)},
        _("%(times)s times") % {"times": _n(n["ratio"], lang, 1)},
    ]


def _capacity(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    out = [_("harvested %(kg)s kg") % {"kg": _n(n["harvested_kg"], lang)}]
    rai = n.get("area_rai", n.get("enrolled_rai"))
    out.append(
        _("at most %(kg)s kg from %(rai)s rai") % {"kg": _n(n["capacity_kg"], lang), "rai": _n(rai, lang, 2)}
    )
    if n.get("ratio") is not None:
        out.append(_("%(times)s times") % {"times": _n(n["ratio"], lang, 1)})
    return out


def _early(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    return [
        _("harvested %(days)s days after planting") % {"days": _n(max(float(n["days"]), 0.0), lang)},
        _("needs at least %(days)s days") % {"days": _n(n["growing_days_min"], lang)},
    ]


def _off_season(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    out = [_("harvested in %(month)s") % {"month": _month(n["month"], lang)}]
    months = _months(n.get("harvest_months", ()), lang)
    if months:
        out.append(_("its harvest: %(months)s") % {"months": months})
    return out


def _transport(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    if n.get("kind") == "receipt_before_shipment":
        return [_("received %(hours)s h before it was shipped") % {"hours": _n(n["hours_early"], lang, 1)}]
    out = [
        _("%(km)s km in %(hours)s h") % {"km": _n(n["km"], lang), "hours": _n(max(n["hours"], 0), lang, 1)}
    ]
    if n.get("km_per_hour") is not None:
        out.append(_("%(speed)s km/h") % {"speed": _n(n["km_per_hour"], lang)})
    out.append(_("a lorry: at most %(speed)s km/h") % {"speed": _n(n["max_km_per_hour"], lang)})
    return out


def _cold(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    low, high = n["range_c"]
    return [
        _("%(minutes)s min outside the range") % {"minutes": _n(n["minutes"], lang)},
        _("reached %(c)s °C") % {"c": _n(n["worst_c"], lang, 1)},
        _("should be %(low)s–%(high)s °C") % {"low": _n(low, lang, 1), "high": _n(high, lang, 1)},
    ]


def _photo(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    photos = n.get("photos", [])
    if len(photos) == 2 and photos[0] == photos[1]:
        return [_("the very same file")]
    return [_("pictures differ in %(bits)s of 64 bits") % {"bits": _n(n["hamming_bits"], lang)}]


def _unusual(n: Mapping[str, Any], lang: str, _: Gettext) -> list[str]:
    return [
        _("anomaly score z %(z)s") % {"z": _n(n["z"], lang, 1)},
        _("among %(count)s farmer-seasons") % {"count": _n(n["farmer_seasons"], lang)},
    ]


_FIGURES: Mapping[RiskCode, Callable[[Mapping[str, Any], str, Gettext], list[str]]] = {
    RiskCode.YIELD_OUTLIER: _yield,
    RiskCode.CAPACITY_EXCEEDED: _capacity,
    RiskCode.TOO_EARLY_HARVEST: _early,
    RiskCode.OFF_SEASON_HARVEST: _off_season,
    RiskCode.IMPOSSIBLE_TRANSPORT: _transport,
    RiskCode.COLD_CHAIN_EXCURSION: _cold,
    RiskCode.PHOTO_REUSED: _photo,
    RiskCode.UNUSUAL_PATTERN: _unusual,
}


def key_figures(signal: Signal, lang: str, gettext: Gettext) -> list[str]:
    """The few figures behind ``signal``, in ``lang`` (empty when its numbers are not the expected ones: the
    sentence still says it all, and a page must never fail over a figure)."""
    figures = _FIGURES.get(signal.code)
    if figures is None:
        return []
    try:
        return figures(signal.numbers, lang, gettext)
    except (KeyError, TypeError, ValueError, IndexError):
        return []


def risk_view(risk: LotRisk | None, lang: str, gettext: Gettext) -> dict[str, Any] | None:
    """A lot's risk for a template: score, level (``none``/``low``/``medium``/``high``) and every reason
    with its text in ``lang`` and its key figures; None when there is no assessment (say nothing then)."""
    if risk is None:
        return None
    th = lang == "th"
    return {
        "score": risk.score,
        "level": risk.level.value,
        "signals": [
            {
                "code": s.code.value,
                "text": s.th if th else s.en,
                "figures": key_figures(s, lang, gettext),
            }
            for s in risk.signals
        ],
    }


def signal_texts(risk: LotRisk | None) -> set[str]:
    """Every sentence the risk's signals say, in both languages: to keep a verdict's list of reasons (which
    carries them as warnings too) from repeating what the risk block already shows."""
    if risk is None:
        return set()
    return {text for s in risk.signals for text in (s.th, s.en)}
