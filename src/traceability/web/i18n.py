"""Page text in Thai (the default) and English, through gettext catalogs (Babel).

Templates call ``_("English source text")``; the Thai is in ``web/locale/th/LC_MESSAGES/messages.po``, kept by
translators (``make messages`` extracts new strings and merges them into both catalogs). English needs no
translation but has its catalog too, so that a wording fix never needs a template change. Catalogs are
compiled in memory when first used: there is no build step and no ``.mo`` file to forget.

Dates are shown as a Thai reader expects them: day, abbreviated Thai month and the Buddhist-era year
(``22 พ.ย. 2569``); English pages use the Gregorian year.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Final

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES: Final = ("th", "en")
DEFAULT_LANGUAGE: Final = "th"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
BUDDHIST_ERA_OFFSET: Final = 543


def pick_lang(lang: str | None) -> str:
    """The page language: ``en`` when asked for, Thai otherwise."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


@cache
def translations(lang: str) -> Translations:
    """The compiled catalog of ``lang``."""
    with catalog_path(pick_lang(lang)).open("rb") as po:
        catalog = read_po(po, locale=pick_lang(lang))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def gettext_for(lang: str) -> tuple[object, object]:
    """``(gettext, ngettext)`` of ``lang``, for a template's context."""
    t = translations(lang)
    return t.gettext, t.ngettext


def thai_year(year: int) -> int:
    """The Buddhist-era year (พ.ศ.) of a Gregorian year."""
    return year + BUDDHIST_ERA_OFFSET


def format_day(value: date | datetime, lang: str) -> str:
    """``22 พ.ย. 2569`` in Thai, ``22 Nov 2026`` in English."""
    if pick_lang(lang) == "th":
        return f"{format_date(value, 'd MMM', locale='th')} {thai_year(value.year)}"
    return format_date(value, "d MMM y", locale="en")


def format_moment(value: datetime, lang: str) -> str:
    """A local date and time: ``22 พ.ย. 2569 เวลา 10:30 น.`` / ``22 Nov 2026, 10:30``."""
    clock = format_time(value, "HH:mm", locale=pick_lang(lang))
    if pick_lang(lang) == "th":
        return f"{format_day(value, 'th')} เวลา {clock} น."
    return f"{format_day(value, 'en')}, {clock}"
