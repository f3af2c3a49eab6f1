"""The farmer's forms for the steps on their own land — planting, harvest, cooling, grading — and the menu of
every step a farmer can record (packing, ship and receive are ``web/farmer_moves.py``'s).

Every form follows one contract, which the offline queue (``static/queue.js``) relies on:

* ``<form method="post" action="/farmer/record/<kind>" data-queue>`` (multipart when it carries a photo) with
  hidden ``csrf``, ``lang`` and ``event_id``: a UUID made when the form is rendered, which becomes the event's
  id and its Idempotency-Key, so the same body sent twice records one event (``web/forms.py``);
* success is a 303 to ``/farmer/lots?recorded=<event_id>``, a resend of the same body too; the same
  ``event_id`` with other values is a 409 page; a value that cannot be accepted re-renders the form (422)
  with a message next to the field, the typed values and the same ``event_id``; no session is a 303 to the
  sign-in page, a wrong CSRF token a 403 page, another farmer's plot or lot a 403 page.

A farmer chooses only among their own plots, lots and known places (``services.choices``); the defaults are
now, the plot used last and the lot's crop, so a harvest is a lot, a weight and a tap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from traceability.api.deps import RuntimeDep, SessionDep
from traceability.domain.catalog import CROPS
from traceability.domain.events import EVENT_ADAPTER, CoolingMethod
from traceability.domain.states import Role
from traceability.errors import ChainConflict, Conflict, Forbidden, InvalidInput, NotFound
from traceability.services.choices import (
    FarmerChoices,
    LotChoice,
    PlotChoice,
    farmer_choices,
    new_lot_code,
    record_step,
)
from traceability.services.evidence import MAX_BYTES as MAX_PHOTO_BYTES
from traceability.services.evidence import served_evidence
from traceability.services.runtime import DbSession, Runtime
from traceability.web.forms import area_rai, form_token, local_now, local_time, mass, new_form_token
from traceability.web.i18n import pick_lang, translations
from traceability.web.pages import render
from traceability.web.session import (
    MAX_FORM_FIELDS,
    WebSession,
    forbidden,
    form_fields,
    private,
    to_sign_in,
    web_session,
    with_lang,
)

# No prefix: the router serves the farmer's forms under /farmer and the evidence photos under /evidence.
router = APIRouter(include_in_schema=False)

LOGIN_PATH: Final = "/farmer/login"
RECORD_PATH: Final = "/farmer/record"
GRADES: Final = ("A", "B", "C")
"""Grades a farmer picks from: the quality classes Thai packing houses buy by (เกรด A/B/C)."""
MAX_VALUE_CHARS: Final = 200
EVIDENCE_CACHE: Final = "public, max-age=31536000, immutable"

Gettext = Callable[[str], str]


# --- reading a posted form -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """A posted form's text fields (the first value of each) and its photo, if one was chosen."""

    fields: dict[str, str]
    photo: bytes | None


async def posted_form(request: Request) -> Posted:
    """URL-encoded forms as ``web.session.form_fields`` reads them; multipart ones (with a photo) with
    python-multipart, one file at most, read only up to one byte past the photo limit so an oversized photo is
    refused by ``services.evidence`` without being held whole. A malformed body is an empty form (then a 403
    for its missing CSRF token), never a 500."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return Posted(await form_fields(request), None)
    try:
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    except HTTPException:
        return Posted({}, None)
    try:
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, value)
        upload = form.get("photo")
        photo = await upload.read(MAX_PHOTO_BYTES + 1) if isinstance(upload, UploadFile) else None
    finally:
        await form.close()
    return Posted(fields, photo or None)


PostedDep = Annotated[Posted, Depends(posted_form)]


# --- what a form shows ---------------------------------------------------------------------------------


class FieldError(Exception):
    """A value the farmer must change: shown next to ``field``, or above the form when ``field`` is empty."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotYours(Exception):
    """A plot or lot that is not among the farmer's own (a form crafted by hand): a 403 page."""


@dataclass(frozen=True)
class Step:
    """One kind of form: its template, whether it takes a photo, its default values and how its fields
    become an event (without ``event_id``, ``event_time`` and ``actor``, which every form shares)."""

    kind: str
    photo: bool
    defaults: Callable[[FarmerChoices], dict[str, str]]
    build: Callable[[Filled], dict[str, Any]]

    @property
    def path(self) -> str:
        return f"{RECORD_PATH}/{self.kind}"

    @property
    def template(self) -> str:
        return f"farmer_form_{self.kind}.html"


@dataclass(frozen=True)
class Filled:
    """A posted form with what it is checked against: the farmer's choices and the page's language."""

    values: Mapping[str, str]
    choices: FarmerChoices
    when: datetime
    _: Gettext

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()


def _kg_text(value: Decimal, lang: str) -> str:
    return format_decimal(value, format="#,##0.###", locale=lang)


def _lot_options(lots: tuple[LotChoice, ...], lang: str, _: Gettext, *, left: bool) -> list[dict[str, str]]:
    """Product first (what the farmer recognises), then what is left (cut last on a narrow select)."""
    options = []
    for lot in lots:
        parts = [lot.product_th if lang == "th" else lot.product_en, lot.code]
        if left:
            parts.insert(1, _("%(kg)s kg left") % {"kg": _kg_text(lot.available_kg, lang)})
        options.append({"value": lot.code, "label": " · ".join(parts)})
    return options


def _place_options(choices: FarmerChoices, lang: str) -> list[dict[str, str]]:
    """Known places by code; the farmer's own plots also by their village."""
    options = []
    for code in choices.places:
        plot = choices.plot(code)
        village = (plot.village_th if lang == "th" else plot.village_en) if plot else None
        options.append({"value": code, "label": f"{village} · {code}" if village else code})
    return options


def _plot_options(plots: tuple[PlotChoice, ...], lang: str, _: Gettext) -> list[dict[str, str]]:
    """The plot's name (else its village), its area, then its code."""
    return [
        {
            "value": p.code,
            "label": f"{p.name or (p.village_th if lang == 'th' else p.village_en)} · "
            + _("%(rai)s rai") % {"rai": _kg_text(p.area_rai, lang)}
            + f" · {p.code}",
        }
        for p in plots
    ]


def _harvestable(choices: FarmerChoices) -> tuple[LotChoice, ...]:
    """Lots planted on the farmer's own plots (a packed lot is not harvested)."""
    return tuple(lot for lot in choices.lots if lot.plot is not None)


def _holding(choices: FarmerChoices) -> tuple[LotChoice, ...]:
    """Lots with produce left to cool or grade."""
    return tuple(lot for lot in choices.lots if lot.available_kg > 0)


def _options(step: Step, choices: FarmerChoices, lang: str, _: Gettext) -> dict[str, Any]:
    """The choices a form's selects offer, as plain view data."""
    if step.kind == "planting":
        return {
            "plots": _plot_options(choices.plots, lang, _),
            "crops": [
                {"value": c.code, "label": c.name_th if lang == "th" else c.name_en} for c in CROPS.values()
            ],
        }
    if step.kind == "harvest":
        return {"lots": _lot_options(_harvestable(choices), lang, _, left=False)}
    return {
        "lots": _lot_options(_holding(choices), lang, _, left=True),
        "places": _place_options(choices, lang),
        "methods": [{"value": m.value, "label": _method_label(m, _)} for m in CoolingMethod],
        "grades": [{"value": g, "label": _("Grade %(grade)s") % {"grade": g}} for g in GRADES],
    }


def _method_label(method: CoolingMethod, _: Gettext) -> str:
    return {
        CoolingMethod.HYDRO: _("Cold water (hydro-cooling)"),
        CoolingMethod.FORCED_AIR: _("Forced cold air"),
        CoolingMethod.VACUUM: _("Vacuum cooling"),
        CoolingMethod.ICE: _("Ice"),
        CoolingMethod.ROOM: _("Cold room"),
        CoolingMethod.OTHER: _("Other"),
    }[method]


# --- defaults --------------------------------------------------------------------------------------------


def _planting_defaults(choices: FarmerChoices) -> dict[str, str]:
    """The plot used last, the crop it is enrolled for (else the farmer's latest crop) and its whole area."""
    plot = choices.plot(choices.last_plot or "") or (choices.plots[0] if choices.plots else None)
    latest = next((lot.crop for lot in choices.lots if lot.plot is not None), None)
    crop = (plot.crop if plot else None) or latest
    return {
        "plot": plot.code if plot else "",
        "crop": crop if crop in CROPS else next(iter(CROPS)),
        "area_rai": _plain(plot.area_rai) if plot else "",
    }


def _harvest_defaults(choices: FarmerChoices) -> dict[str, str]:
    lots = _harvestable(choices)
    on_last_plot = [lot for lot in lots if lot.plot == choices.last_plot]
    first = next(iter(on_last_plot or lots), None)
    return {"lot": first.code if first else ""}


def _holding_defaults(choices: FarmerChoices) -> dict[str, str]:
    lot = next(iter(_holding(choices)), None)
    place = choices.last_plot or (choices.places[0] if choices.places else "")
    return {
        "lot": lot.code if lot else "",
        "quantity": _plain(lot.available_kg) if lot else "",
        "place": place,
        "method": CoolingMethod.ICE.value,
        "grade": GRADES[0],
        "disposition": "conformant",
    }


def _plain(value: Decimal) -> str:
    """A number as a person types it: no exponent, no trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- turning fields into events --------------------------------------------------------------------------


def _own_plot(f: Filled) -> PlotChoice:
    code = f.get("plot").upper()
    if not code:
        raise FieldError("plot", f._("Choose a plot."))
    plot = f.choices.plot(code)
    if plot is None:
        raise NotYours(code)
    return plot


def _own_lot(f: Filled, among: tuple[LotChoice, ...]) -> LotChoice:
    code = f.get("lot").upper()
    if not code:
        raise FieldError("lot", f._("Choose a lot."))
    lot = f.choices.lot(code)
    if lot is None:
        raise NotYours(code)
    if lot not in among:
        raise FieldError("lot", f._("This step cannot be recorded for this lot. Choose another lot."))
    return lot


def _plot_place(plot: PlotChoice) -> dict[str, str]:
    place = {"id": plot.code}
    if plot.lat is not None and plot.lon is not None:
        place |= {"lat": str(plot.lat), "lon": str(plot.lon)}
    return place


def _known_place(f: Filled) -> dict[str, str]:
    code = f.get("place").upper()
    if code not in f.choices.places:
        raise FieldError("place", f._("Choose a place from the list."))
    plot = f.choices.plot(code)
    return _plot_place(plot) if plot else {"id": code}


def _quantity(f: Filled) -> dict[str, str]:
    try:
        return mass(f.get("quantity"), f.get("quantity_unit") or "kg")
    except InvalidInput as exc:
        if exc.code == "invalid_unit":
            raise FieldError("quantity", f._("Choose kilograms or tonnes.")) from None
        raise FieldError("quantity", f._("Enter the weight as a number, for example 250 or 1.5.")) from None


def _build_planting(f: Filled) -> dict[str, Any]:
    plot = _own_plot(f)
    crop = f.get("crop")
    if crop not in CROPS:
        raise FieldError("crop", f._("Choose a crop from the list."))
    try:
        area = area_rai(f.get("area_rai"), f.get("area_ngan"), f.get("area_wa"))
    except InvalidInput:
        raise FieldError(
            "area", f._("Enter the planted area in rai, ngan and square wa, as numbers.")
        ) from None
    return {
        "kind": "planting",
        "lot_code": f.get("lot_code"),
        "plot_id": plot.code,
        "crop": crop,
        "variety": f.get("variety"),
        "area_rai": str(area),
        "place": _plot_place(plot),
    }


def _build_harvest(f: Filled) -> dict[str, Any]:
    lot = _own_lot(f, _harvestable(f.choices))
    plot = f.choices.plot(lot.plot or "")
    if plot is None:
        raise NotYours(lot.code)  # planted on a plot that is no longer the farmer's
    return {
        "kind": "harvest",
        "lot_code": lot.code,
        "plot_id": plot.code,
        "crop": lot.crop,
        "quantity": _quantity(f),
        "place": _plot_place(plot),
    }


def _build_cooling(f: Filled) -> dict[str, Any]:
    lot = _own_lot(f, f.choices.lots)
    method = f.get("method")
    if method not in {m.value for m in CoolingMethod}:
        raise FieldError("method", f._("Choose how the produce was cooled."))
    celsius = f.get("celsius").replace(",", ".")
    return {
        "kind": "cooling",
        "lot_code": lot.code,
        "quantity": _quantity(f),
        "method": method,
        "temperatures": [{"time": f.when, "celsius": celsius}] if celsius else [],
        "place": _known_place(f),
    }


def _build_grading(f: Filled) -> dict[str, Any]:
    lot = _own_lot(f, f.choices.lots)
    grade = f.get("grade")
    if grade not in GRADES:
        raise FieldError("grade", f._("Choose a grade."))
    disposition = f.get("disposition")
    if disposition not in ("conformant", "non_conformant"):
        raise FieldError("disposition", f._("Choose whether this produce passed or was graded out."))
    return {
        "kind": "grading",
        "lot_code": lot.code,
        "grade": grade,
        "quantity": _quantity(f),
        "disposition": disposition,
        "place": _known_place(f),
    }


STEPS: Final = {
    "planting": Step("planting", False, _planting_defaults, _build_planting),
    "harvest": Step("harvest", True, _harvest_defaults, _build_harvest),
    "cooling": Step("cooling", False, _holding_defaults, _build_cooling),
    "grading": Step("grading", True, _holding_defaults, _build_grading),
}


def _event_problem(exc: ValidationError, _: Gettext) -> FieldError:
    """The event's own checks (domain/events.py) as a message next to the form field holding the value; what
    no field holds (a tampered hidden field) above the form."""
    loc = exc.errors()[0]["loc"]
    # loc is (kind, field, ...) in the discriminated union of events.
    problems = {
        "quantity": (
            "quantity",
            _("The weight must be more than 0 and at most 10,000 tonnes, with at most 3 decimals."),
        ),
        "event_time": ("event_time", _("The date and time must be between 2000 and now.")),
        "area_rai": ("area", _("The area must be more than 0 and at most 1,000 rai.")),
        "variety": ("variety", _("The variety name is too long or has characters that cannot be used.")),
        "temperatures": ("celsius", _("The temperature must be a number from -40 to 80 °C.")),
        "lot_code": ("", _("This form has a broken lot code. Please open a new form.")),
    }
    field, message = problems.get(
        str(loc[1]) if len(loc) > 1 else "", ("", _("Please check the values and send again."))
    )
    return FieldError(field, message)


def _when(value: str | None, tz: str, _: Gettext) -> datetime:
    try:
        return local_time(value, tz)
    except InvalidInput:
        raise FieldError("event_time", _("Choose a date and time.")) from None


def _check_event(data: Mapping[str, Any], party: str, _: Gettext) -> None:
    """The event's own checks before anything is recorded, so that a refusal points at its field."""
    try:
        EVENT_ADAPTER.validate_python({**data, "actor": party})
    except ValidationError as exc:
        raise _event_problem(exc, _) from None


PHOTO_REFUSALS: Final = ("empty_file", "photo_too_large", "image_too_many_pixels", "not_an_image")


def _refusal(exc: InvalidInput, values: Mapping[str, str], choices: FarmerChoices, lang: str) -> FieldError:
    """What the ledger or the photo check refused, as a message next to the field to change."""
    _ = translations(lang).gettext
    if exc.code in PHOTO_REFUSALS:
        return FieldError(
            "photo", _("This file is not a photo we can use. Choose a JPEG, PNG or WebP photo under 10 MB.")
        )
    lot = choices.lot(values.get("lot", "").strip().upper())
    if exc.code == "mass_balance" and lot is not None:
        left = {"kg": _kg_text(lot.available_kg, lang)}
        return FieldError("quantity", _("That is more than this lot holds now (%(kg)s kg left).") % left)
    if exc.code == "lot_exists":
        return FieldError(
            "", _("Another form took this lot code a moment ago. Check the new code and send again.")
        )
    return FieldError("", _("This step could not be recorded. Please check the values and send again."))


# --- routes --------------------------------------------------------------------------------------------


def _menu(request: Request, lang: str, problem: str | None = None, status_code: int = 200) -> Response:
    context = {"problem": problem, "switch_url": RECORD_PATH}
    return private(render(request, "farmer_record.html", lang, context, status_code=status_code))


@router.get("/farmer/record")
def record_menu(request: Request, session: SessionDep, lang: str | None = None) -> Response:
    """The steps a farmer can record, as big buttons."""
    language = pick_lang(lang)
    if web_session(session, request, Role.FARMER) is None:
        return to_sign_in(request, LOGIN_PATH, language)
    return _menu(request, language)


@dataclass(frozen=True)
class Page:
    """One farmer's form page being answered: who, in which language, with which choices."""

    request: Request
    step: Step
    lang: str
    signed_in: WebSession
    choices: FarmerChoices
    tz: str

    @property
    def gettext(self) -> Gettext:
        return translations(self.lang).gettext

    def fresh(self, session: DbSession) -> dict[str, str]:
        """A new form's values: a new token, now, the step's defaults and, for a planting, a new lot code."""
        values = {
            "event_id": new_form_token(),
            "event_time": local_now(self.tz),
            **self.step.defaults(self.choices),
        }
        if self.step.kind == "planting":
            today = datetime.now(ZoneInfo(self.tz)).date()
            values["lot_code"] = new_lot_code(session, self.signed_in.principal.party, today)
        return values

    def form(
        self,
        values: Mapping[str, str],
        *,
        error: FieldError | None = None,
        status_code: int = 200,
    ) -> Response:
        errors = {error.field: error.message} if error and error.field else {}
        context = {
            "csrf": self.signed_in.csrf,
            "values": values,
            "errors": errors,
            "problem": error.message if error and not error.field else None,
            "switch_url": self.step.path,
            "choices": _options(self.step, self.choices, self.lang, self.gettext),
        }
        response = render(self.request, self.step.template, self.lang, context, status_code=status_code)
        return private(response)


def _page(request: Request, session: DbSession, runtime: Runtime, step: Step, lang: str) -> Page | Response:
    """The page of a signed-in farmer, or the way to the sign-in page."""
    signed_in = web_session(session, request, Role.FARMER)
    if signed_in is None or signed_in.principal.farmer_id is None:
        return to_sign_in(request, LOGIN_PATH, lang)
    choices = farmer_choices(session, signed_in.principal.farmer_id)
    return Page(request, step, lang, signed_in, choices, runtime.settings.timezone)


def _show_form(step: Step) -> Callable[..., Response]:
    def show_form(
        request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None
    ) -> Response:
        page = _page(request, session, runtime, step, pick_lang(lang))
        return page if isinstance(page, Response) else page.form(page.fresh(session))

    show_form.__doc__ = f"The {step.kind} form with the farmer's own choices and today's defaults."
    return show_form


def _record_form(step: Step) -> Callable[..., Response]:
    def record(request: Request, session: SessionDep, runtime: RuntimeDep, posted: PostedDep) -> Response:
        lang = pick_lang(posted.fields.get("lang"))
        if (signed_in := web_session(session, request, Role.FARMER)) is None:
            return to_sign_in(request, LOGIN_PATH, lang)
        if not signed_in.checks(posted.fields.get("csrf")):
            return forbidden(request, lang, step.path)
        page = _page(request, session, runtime, step, lang)
        return page if isinstance(page, Response) else _answer(page, session, runtime, posted)

    record.__doc__ = f"Record a {step.kind} from its form: 303 to My lots, or the form again with a message."
    return record


def _answer(page: Page, session: DbSession, runtime: Runtime, posted: Posted) -> Response:
    _ = page.gettext
    values = {k: v[:MAX_VALUE_CHARS] for k, v in posted.fields.items() if k not in ("csrf", "lang")}
    try:
        event_id = form_token(values.get("event_id"))
    except InvalidInput:
        damaged = FieldError("", _("This form was damaged. Please check the values and send it again."))
        return page.form({**values, **page.fresh(session)}, error=damaged, status_code=422)
    photo = posted.photo if page.step.photo else None
    try:
        when = _when(values.get("event_time"), page.tz, _)
        data = {**page.step.build(Filled(values, page.choices, when, _)), "event_id": event_id}
        data["event_time"] = when
        if photo is not None:
            data["evidence"] = [hashlib.sha256(photo).hexdigest()]
        _check_event(data, page.signed_in.principal.party, _)
        record_step(
            session,
            page.signed_in.principal,
            data,
            id_base=runtime.settings.id_base,
            evidence_dir=runtime.settings.evidence_dir,
            photo=photo,
        )
    except FieldError as exc:
        return page.form(values, error=exc, status_code=422)
    except (NotYours, Forbidden, NotFound):
        return _menu(
            page.request, page.lang, _("That plot or lot is not yours, so nothing was recorded."), 403
        )
    except ChainConflict:
        busy = FieldError("", _("Someone recorded a step on this lot at the same moment. Please send again."))
        return page.form(values, error=busy, status_code=409)
    except Conflict:
        message = _(
            "This form was already sent with different values, so nothing was changed. Open a new form."
        )
        return _menu(page.request, page.lang, message, 409)
    except InvalidInput as exc:
        if exc.code == "lot_exists" and page.step.kind == "planting":
            values["lot_code"] = page.fresh(session)["lot_code"]
        return page.form(values, error=_refusal(exc, values, page.choices, page.lang), status_code=422)
    return RedirectResponse(with_lang(f"/farmer/lots?recorded={event_id}", page.lang), status_code=303)


for _step in STEPS.values():
    router.add_api_route(_step.path, _show_form(_step), methods=["GET"])
    router.add_api_route(_step.path, _record_form(_step), methods=["POST"])


@router.get("/evidence/{sha256}")
def evidence(sha256: str, runtime: RuntimeDep) -> Response:
    """A photo recorded as evidence, by the SHA-256 its event names: the copy without metadata (no GPS, no
    phone model), cached for good since its name is its content."""
    data = served_evidence(sha256, evidence_dir=runtime.settings.evidence_dir)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": EVIDENCE_CACHE})
