"""The officer's enrolment pages: the authority's farmers and their plots, and the forms that enrol a farmer
(phone number + PIN for their sign-in) and a plot (name, area in ไร่ + งาน, crop, standard, location and an
optional GeoJSON boundary pasted from a GPS or map app).

Only an officer's session sees them (anyone else is sent to the officer's sign-in); every form carries the
session's CSRF token. The plot form carries a one-time token too (``key``), kept with the plot, so a double
tap or a resend enrols it once. A refused form is re-rendered (422, or 409 for a phone number or plot name
already taken) with a message at each field and the values typed, never the PIN. After a plot is enrolled
the page shows its boundary's computed area and a warning when it is far from the declared area.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from traceability.api.deps import SessionDep
from traceability.domain.catalog import CROPS, STANDARDS, FarmingStandard
from traceability.domain.geo import M2_PER_RAI, rai_ngan_wa
from traceability.domain.states import Role
from traceability.errors import Conflict, Forbidden, InvalidInput
from traceability.services.enrolment import (
    MAX_BOUNDARY_CHARS,
    EnrolmentInvalid,
    PlotCheck,
    PlotView,
    authority_farmers,
    check_authority_plot,
    enrol_authority_farmer,
    enrol_authority_plot,
    enrolled_plot,
    farmer_application,
    farmer_choices,
    plot_application,
)
from traceability.services.review import officer_desk
from traceability.services.runtime import DbSession
from traceability.web.forms import area_rai, form_token, new_form_token
from traceability.web.i18n import pick_lang, translations
from traceability.web.pages import render
from traceability.web.session import (
    MAX_FORM_FIELDS,
    FormDep,
    WebSession,
    posted,
    private,
    to_sign_in,
    web_session,
    with_lang,
)

router = APIRouter(prefix="/officer", include_in_schema=False)

LOGIN_PATH: Final = "/officer/login"
FARMERS_PATH: Final = "/officer/farmers"
NEW_FARMER_PATH: Final = "/officer/farmers/new"
NEW_PLOT_PATH: Final = "/officer/plots/new"
FARMER_FIELDS: Final = ("display_name", "phone", "group_th")
PLOT_FIELDS: Final = (
    "farmer",
    "name",
    "village_th",
    "village_en",
    "area_rai",
    "area_ngan",
    "crop",
    "standard",
    "lat",
    "lon",
    "boundary",
)
Gettext = Callable[[str], str]


async def plot_form_fields(request: Request) -> dict[str, str]:
    """The plot form's fields: like ``web.session.form_fields`` but with room for a pasted boundary (the
    app's body limit, ``api/limits.py``, still bounds it); a boundary too long is the form's 422."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items()}


# ------------------------------------------------------------------ messages


def _field_messages(_: Gettext) -> dict[tuple[str, str], str]:
    """(field, code) → the sentence shown at the field."""
    return {
        ("display_name", "missing"): _("Enter the farmer's name."),
        ("display_name", "too_long"): _("The name is too long."),
        ("phone", "phone_invalid"): _("Enter a Thai phone number of 9 or 10 digits starting with 0."),
        ("phone", "phone_taken"): _(
            "This phone number is already registered to a farmer. Each farmer signs in with their own number."
        ),
        ("pin", "pin_invalid"): _("The PIN must be 4 to 6 digits."),
        ("pin_again", "pin_mismatch"): _("The two PINs are not the same."),
        ("group_th", "too_long"): _("The group name is too long."),
        ("farmer", "farmer_missing"): _("Choose the farmer."),
        ("name", "missing"): _("Enter the plot's name."),
        ("name", "too_long"): _("The plot's name is too long."),
        ("name", "plot_name_taken"): _("This farmer already has a plot with this name."),
        ("village_th", "missing"): _("Enter the village."),
        ("village_th", "too_long"): _("The village name is too long."),
        ("area", "area_invalid"): _("Enter the area in rai and ngan (more than 0)."),
        ("area", "area_too_large"): _("The area is too large for one plot."),
        ("crop", "crop_invalid"): _("Choose the crop."),
        ("standard", "standard_invalid"): _("Choose the standard the plot is farmed under."),
        ("boundary", "boundary_too_large"): _(
            "The boundary is too large. Simplify it to at most 2,000 corners and try again."
        ),
        ("boundary", "boundary_invalid"): _(
            "The boundary is not a valid GeoJSON polygon. Paste the polygon exported from a GPS or map app."
        ),
        ("lat", "point_missing"): _("Enter the plot's latitude and longitude, or paste its boundary."),
        ("lat", "lat_invalid"): _("The latitude must be a number from -90 to 90, e.g. 15.1108."),
        ("lon", "lon_invalid"): _("The longitude must be a number from -180 to 180, e.g. 103.6163."),
    }


def _problems(exc: EnrolmentInvalid, _: Gettext) -> dict[str, str]:
    known = _field_messages(_)
    messages = {field: known.get((field, code), code) for field, code in exc.problems.items()}
    for field, detail in exc.details.items():
        messages[field] += " (" + detail + ")"
    return messages


def _area_text(rai: Decimal, _: Gettext) -> str:
    """An area as a land title writes it: ``2 ไร่ 2 งาน 50 ตร.ว.`` (zero parts left out)."""
    whole, ngan, wa = rai_ngan_wa(float(rai * M2_PER_RAI))
    parts = [_("%(n)s rai") % {"n": whole}] if whole else []
    if ngan:
        parts.append(_("%(n)s ngan") % {"n": ngan})
    if wa >= 1 or not parts:
        parts.append(_("%(n)s sq. wa") % {"n": wa.to_integral_value()})
    return " ".join(parts)


def _warnings(found: tuple[str, ...], declared: Decimal, computed: Decimal | None, _: Gettext) -> list[str]:
    """The sentences of a plot's warnings (``services.enrolment.plot_warnings``)."""
    sentences = {
        "boundary_far": _(
            "The boundary's area (%(computed)s) is far from the declared area (%(declared)s). "
            "Check the boundary or the declared area."
        )
        % {
            "computed": _area_text(computed, _) if computed is not None else "",
            "declared": _area_text(declared, _),
        },
        "outside_thailand": _("The location is outside Thailand. Check the latitude and longitude."),
        "point_off_boundary": _("The location is not at the boundary. Check the latitude and longitude."),
    }
    return [sentences[w] for w in found]


def _plot_context(plot: PlotView, lang: str, _: Gettext) -> dict[str, Any]:
    """A plot as plain view data: names in the page language, areas in ไร่/งาน, warnings as sentences."""
    crop = CROPS.get(plot.crop or "")
    standard = STANDARDS.get(FarmingStandard(plot.standard)) if plot.standard else None
    computed = plot.boundary_area_rai
    return {
        "code": plot.code,
        "name": plot.name,
        "village": plot.village_th if lang == "th" else plot.village_en,
        "area": _area_text(plot.area_rai, _),
        "crop": (crop.name_th if lang == "th" else crop.name_en) if crop else None,
        "standard": (standard.name_th if lang == "th" else standard.name_en) if standard else None,
        "boundary": _area_text(computed, _) if computed is not None else None,
        "boundary_rai": computed,
        "warnings": _warnings(plot.warnings, plot.area_rai, computed, _),
    }


def _flag_labels(_: Gettext) -> dict[str, str]:
    """The warnings in a word or two, for the list of farmers (the plot's page says them in full)."""
    return {
        "boundary_far": _("Boundary far from the declared area"),
        "outside_thailand": _("Location outside Thailand"),
        "point_off_boundary": _("Location not at the boundary"),
    }


def _check_context(check: PlotCheck, _: Gettext) -> dict[str, Any]:
    computed = check.boundary_area_rai
    return {
        "area": _area_text(check.area_rai, _),
        "boundary": _area_text(computed, _) if computed is not None else None,
        "boundary_rai": computed,
        "warnings": _warnings(check.warnings, check.area_rai, computed, _),
    }


# ------------------------------------------------------------------ shared


def _nav(session: DbSession, signed_in: WebSession, lang: str, switch_url: str) -> dict[str, Any]:
    """What the officer's navigation bar (``_officer_nav.html``) and the language switch need."""
    desk = officer_desk(session, signed_in.principal.officer_id or 0)
    return {
        "csrf": signed_in.csrf,
        "officer": desk.display_name,
        "authority": desk.authority_th if lang == "th" else desk.authority_en,
        "switch_url": switch_url,
    }


# ------------------------------------------------------------------ the authority's farmers


@router.get("/farmers")
def farmers(
    request: Request,
    session: SessionDep,
    lang: str | None = None,
    enrolled: str | None = None,
    page: str | None = None,
) -> Response:
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.OFFICER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, language)
    _ = translations(language).gettext
    number = int(page) if page and page.isdigit() and len(page) < 7 else 1
    listed = authority_farmers(session, signed_in.principal, page=number)
    labels = _flag_labels(_)
    rows = [
        {
            "code": f.code,
            "name": f.display_name,
            "phone": f.phone,
            "group": f.group_th,
            "plots": [
                {**_plot_context(p, language, _), "flags": [labels[w] for w in p.warnings]} for p in f.plots
            ],
        }
        for f in listed.farmers
    ]
    just = next((r for r in rows if r["code"] == (enrolled or "").strip().upper()), None)
    context = {
        **_nav(session, signed_in, language, FARMERS_PATH),
        "farmers": rows,
        "enrolled": just,
        "page": listed.page,
        "pages": listed.pages,
    }
    return private(render(request, "officer_farmers.html", language, context))


# ------------------------------------------------------------------ enrol a farmer


def _farmer_form(
    request: Request,
    session: DbSession,
    signed_in: WebSession,
    lang: str,
    *,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    values = {field: (typed or {}).get(field, "")[:300] for field in FARMER_FIELDS}
    context = {
        **_nav(session, signed_in, lang, NEW_FARMER_PATH),
        "values": values,
        "errors": dict(errors or {}),
    }
    return private(render(request, "officer_farmer_new.html", lang, context, status_code=status_code))


@router.get("/farmers/new")
def new_farmer(request: Request, session: SessionDep, lang: str | None = None) -> Response:
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.OFFICER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, language)
    return _farmer_form(request, session, signed_in, language)


@router.post("/farmers/new")
def enrol_farmer_page(request: Request, session: SessionDep, form: FormDep) -> Response:
    lang, signed_in = posted(session, request, form, Role.OFFICER, LOGIN_PATH)
    if isinstance(signed_in, Response):
        return signed_in
    _ = translations(lang).gettext
    try:
        application = farmer_application(
            display_name=form.get("display_name", ""),
            phone=form.get("phone", "")[:40],
            pin=form.get("pin", "")[:40],
            pin_again=form.get("pin_again", "")[:40],
            group_th=form.get("group_th", ""),
        )
        enrolled = enrol_authority_farmer(session, signed_in.principal, application)
    except EnrolmentInvalid as exc:
        return _farmer_form(
            request, session, signed_in, lang, typed=form, errors=_problems(exc, _), status_code=422
        )
    except Conflict as exc:
        errors = _problems(EnrolmentInvalid({"phone": exc.code}), _)
        return _farmer_form(request, session, signed_in, lang, typed=form, errors=errors, status_code=409)
    target = f"{FARMERS_PATH}?enrolled={enrolled.code}"
    return RedirectResponse(with_lang(target, lang) + f"#{enrolled.code}", status_code=303)


# ------------------------------------------------------------------ enrol a plot


def _plot_form(
    request: Request,
    session: DbSession,
    signed_in: WebSession,
    lang: str,
    *,
    key: str | None = None,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    alert: str | None = None,
    done: PlotView | None = None,
    checked: PlotCheck | None = None,
    status_code: int = 200,
) -> Response:
    _ = translations(lang).gettext
    values = {field: (typed or {}).get(field, "") for field in PLOT_FIELDS}
    if len(values["boundary"]) > MAX_BOUNDARY_CHARS:
        values["boundary"] = ""  # refused as too large: not sent back to the phone
    choices = [
        {"code": f.code, "label": f"{f.display_name} ({f.code})"}
        for f in farmer_choices(session, signed_in.principal, chosen=values["farmer"])
    ]
    context = {
        **_nav(session, signed_in, lang, NEW_PLOT_PATH),
        "key": key or new_form_token(),
        "values": values,
        "errors": dict(errors or {}),
        "alert": alert,
        "farmers": choices,
        "crops": [
            {"code": c.code, "label": c.name_th if lang == "th" else c.name_en} for c in CROPS.values()
        ],
        "standards": [
            {"code": code.value, "label": name.name_th if lang == "th" else name.name_en}
            for code, name in STANDARDS.items()
        ],
        "done": _plot_context(done, lang, _) if done else None,
        "checked": _check_context(checked, _) if checked else None,
    }
    return private(render(request, "officer_plot_new.html", lang, context, status_code=status_code))


@router.get("/plots/new")
def new_plot(
    request: Request,
    session: SessionDep,
    lang: str | None = None,
    farmer: str | None = None,
    done: str | None = None,
) -> Response:
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.OFFICER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, language)
    shown = enrolled_plot(session, signed_in.principal, done) if done else None
    typed = {"farmer": (farmer or (shown.farmer_code if shown else "")).strip().upper()[:32]}
    return _plot_form(request, session, signed_in, language, typed=typed, done=shown)


PlotFormDep = Annotated[dict[str, str], Depends(plot_form_fields)]


@router.post("/plots/new")
def enrol_plot_page(request: Request, session: SessionDep, form: PlotFormDep) -> Response:
    lang, signed_in = posted(session, request, form, Role.OFFICER, LOGIN_PATH)
    if isinstance(signed_in, Response):
        return signed_in
    _ = translations(lang).gettext
    try:
        key = form_token(form.get("key"))
    except InvalidInput:
        alert = _("This form is no longer valid. Please fill it in again.")
        return _plot_form(request, session, signed_in, lang, typed=form, alert=alert, status_code=422)
    try:
        area: Decimal | None = area_rai(form.get("area_rai"), form.get("area_ngan"))
    except (InvalidInput, ArithmeticError):  # ArithmeticError: an exponent too large to round, e.g. 1e30
        area = None
    try:
        application = plot_application(
            key=key,
            farmer_code=form.get("farmer", "")[:32],
            name=form.get("name", ""),
            village_th=form.get("village_th", ""),
            village_en=form.get("village_en", ""),
            area_rai=area,
            crop=form.get("crop", ""),
            standard=form.get("standard", ""),
            lat=form.get("lat", "")[:40],
            lon=form.get("lon", "")[:40],
            boundary=form.get("boundary", ""),
        )
        if form.get("action") == "check":
            checked = check_authority_plot(session, signed_in.principal, application)
            # The point as it will be recorded: a pasted "lat, lon" split, or the boundary's centre.
            point = {"lat": str(application.lat), "lon": str(application.lon)}
            typed = {**form, **point}
            return _plot_form(request, session, signed_in, lang, key=key, typed=typed, checked=checked)
        enrolled = enrol_authority_plot(session, signed_in.principal, application)
    except EnrolmentInvalid as exc:
        return _plot_form(
            request, session, signed_in, lang, key=key, typed=form, errors=_problems(exc, _), status_code=422
        )
    except Forbidden:
        alert = _("This farmer is not registered with your local authority.")
        return _plot_form(
            request, session, signed_in, lang, key=key, typed=form, alert=alert, status_code=403
        )
    except Conflict as exc:
        if exc.code == "plot_name_taken":
            errors = _problems(EnrolmentInvalid({"name": exc.code}), _)
            return _plot_form(
                request, session, signed_in, lang, key=key, typed=form, errors=errors, status_code=409
            )
        alert = _("This form was already sent with other values. Open a new form to enrol another plot.")
        return _plot_form(request, session, signed_in, lang, typed=form, alert=alert, status_code=409)
    plot = enrolled.plot
    target = f"{NEW_PLOT_PATH}?done={plot.code}&farmer={plot.farmer_code}"
    return RedirectResponse(with_lang(target, lang), status_code=303)
