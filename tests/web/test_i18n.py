"""Page text goes through gettext catalogs, and every string a template or page module shows has its Thai."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from traceability.web.i18n import LANGUAGES, catalog_path, format_day, format_moment, pick_lang, translations

WEB = Path(__file__).resolve().parents[2] / "src" / "traceability" / "web"
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]


def shown_strings() -> set[str]:
    """Every msgid the templates and page modules pass to ``_``/``gettext``/``ngettext``."""
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(WEB), METHODS):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def catalog(lang: str) -> dict[str, str]:
    with catalog_path(lang).open("rb") as po:
        return {str(m.id): str(m.string) for m in read_po(po, locale=lang) if m.id}


def test_the_extractor_sees_the_templates():
    assert "Community produce traceability" in shown_strings()
    assert len(shown_strings()) >= 10


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_shown_string_is_translated_and_nothing_is_left_over(lang):
    entries = catalog(lang)
    missing = sorted(s for s in shown_strings() if not entries.get(s, "").strip())
    assert missing == [], f"no {lang} text for {missing}: run `make messages` and translate"
    unused = sorted(set(entries) - shown_strings())
    assert unused == [], f"{lang} catalog holds strings no page shows: {unused}"


def test_thai_is_thai():
    th = catalog("th")
    assert all(any("\u0e00" <= ch <= "\u0e7f" for ch in text) for text in th.values()), th
    assert translations("th").gettext("Lots") == "ล็อตสินค้า"
    assert translations("en").gettext("Lots") == "Lots"


def test_thai_dates_use_the_buddhist_era_and_local_time():
    bangkok = timezone(timedelta(hours=7))
    moment = datetime(2026, 11, 22, 3, 30, tzinfo=UTC).astimezone(bangkok)
    assert format_day(moment, "th") == "22 พ.ย. 2569"
    assert format_day(moment, "en") == "22 Nov 2026"
    assert format_moment(moment, "th") == "22 พ.ย. 2569 เวลา 10:30 น."
    assert format_moment(moment, "en") == "22 Nov 2026, 10:30"


def test_thai_is_the_default_language():
    assert pick_lang(None) == pick_lang("fr") == pick_lang("") == "th"
    assert pick_lang("en") == "en"
