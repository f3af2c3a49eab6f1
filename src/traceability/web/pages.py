"""Server-rendered pages: one Jinja2 environment, and every page rendered in its language.

Templates get plain view data (never ORM objects) and, for their text, ``_``/``gettext``/``ngettext`` of the
page's language (``web/i18n.py``), plus ``format_day``/``format_moment`` for dates (Buddhist era in Thai).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from traceability.web.i18n import LANGUAGES, format_day, format_moment, gettext_for, pick_lang
from traceability.web.static_files import static_url

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
TEMPLATES.env.globals["static_url"] = static_url


def render(
    request: Request, name: str, lang: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    """``name`` rendered in ``lang`` (Thai unless ``en``)."""
    language = pick_lang(lang)
    gettext, ngettext = gettext_for(language)

    def day(value: date | datetime) -> str:
        return format_day(value, language)

    def moment(value: datetime) -> str:
        return format_moment(value, language)

    return TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "lang": language,
            "other_lang": next(code for code in LANGUAGES if code != language),
            "_": gettext,
            "gettext": gettext,
            "ngettext": ngettext,
            "format_day": day,
            "format_moment": moment,
            **context,
        },
        status_code=status_code,
    )
