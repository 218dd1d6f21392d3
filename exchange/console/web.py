"""The console's pages: sign-in (password, then the second factor), the alert desk, a
report, the sender's view, sign-out.

Every page is rendered on the server (Jinja2, autoescaped) and works without JavaScript; one
small script of our own refreshes the desk. Each page reads through the same services and
visibility rules as the API, as a principal carrying the user's id, so the audit log names
the person. Every form carries the session's CSRF token; every answer carries a strict
Content-Security-Policy and nothing is fetched from another host."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_datetime
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session, col, func, select

from exchange.accounts import service as accounts
from exchange.accounts.models import ROLE_SCOPES, ConsoleSession, Role, User
from exchange.agencies.models import Agency, AgencyKind
from exchange.agencies.service import Principal, get_agency
from exchange.audit import service as audit
from exchange.delivery import receipts
from exchange.delivery.models import Delivery, DeliveryState
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import ExchangeError
from exchange.hub import Hub
from exchange.i18n import Locale, t
from exchange.models import utcnow
from exchange.protection import service as protection
from exchange.ratelimit import RateLimited
from exchange.regions.models import Region
from exchange.registry.service import values_at
from exchange.reports import service as reports
from exchange.reports.models import Report

PREFIX = "/console"
COOKIE = "exchange_session"
LANGUAGE_COOKIE = "exchange_lang"
LOGIN_CSRF_COOKIE = "exchange_login_csrf"
JAKARTA = ZoneInfo("Asia/Jakarta")
DESK_PAGE = 100
SHOWN_ERRORS = frozenset({"report_not_found", "report_purged"})  # the others read "other"
HERE = Path(__file__).resolve().parent
# No inline script or style, nothing from another host, no framing, forms only to us.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
)
router = APIRouter(prefix=PREFIX, include_in_schema=False)


class ConsoleDenied(Exception):
    """Raised to send the browser somewhere else (the sign-in page, the next step)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


# --- rendering ------------------------------------------------------------------------------


def language(request: Request) -> Locale:
    """Bahasa Indonesia first; English when the reader switched to it."""
    return "en" if request.cookies.get(LANGUAGE_COOKIE) == "en" else "id"


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    locale = language(request)

    def text(key: str, **params: Any) -> str:
        return t(f"console.{key}", **params).render(locale)

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "-"
        shown = format_datetime(moment, "d MMM y HH.mm.ss", tzinfo=JAKARTA, locale=locale)
        return f"{shown} WIB (UTC+07.00)"

    html = templates.get_template(template).render(
        _=text, when=when, locale=locale, prefix=PREFIX, **context
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def _secure(request: Request, hub: Hub) -> bool:
    """Cookies are Secure except for a development hub reached on loopback over HTTP."""
    loopback = request.url.hostname in {"127.0.0.1", "localhost", "::1", "testserver"}
    return not (hub.settings.env.value == "dev" and loopback and request.url.scheme == "http")


def _set_cookie(response: Response, request: Request, hub: Hub, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=_secure(request, hub),
        samesite="strict",
        path=PREFIX,
    )


# --- who is there ---------------------------------------------------------------------------


class Visitor:
    """A signed-in user: its session, its agency and the principal it acts as."""

    def __init__(self, record: ConsoleSession, user: User, agency: Agency) -> None:
        self.record = record
        self.user = user
        self.agency = agency
        scopes = frozenset(ROLE_SCOPES[role] for role in user.role_set)
        self.principal = Principal(
            agency_id=agency.id,
            key_id=f"user-{user.id}",
            scopes=scopes,
            operator=agency.kind == AgencyKind.operator,
            user_id=user.id,
        )

    def has(self, role: Role) -> bool:
        return role in self.user.role_set


def _timeouts(hub: Hub) -> accounts.Timeouts:
    return accounts.Timeouts(
        idle=timedelta(seconds=hub.settings.console_idle_timeout_s),
        absolute=timedelta(seconds=hub.settings.console_absolute_timeout_s),
    )


def signed_in(
    request: Request, session: Session, hub: Hub, *, complete: bool, touch: bool = True
) -> Visitor:
    """The visitor whose session cookie this is; with ``complete``, only once it has set its
    own password and passed the second factor its roles need. ``touch`` False for requests a
    page's script makes on its own: they do not keep an unattended session alive."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise ConsoleDenied(f"{PREFIX}/login")
    try:
        record, user = accounts.current_session(
            session, token=token, now=utcnow(), timeouts=_timeouts(hub), touch=touch
        )
    except accounts.SessionEnded:
        raise ConsoleDenied(f"{PREFIX}/login") from None
    visitor = Visitor(record, user, get_agency(session, user.agency_id))
    if complete:
        if user.password_must_change:
            raise ConsoleDenied(f"{PREFIX}/password")
        if accounts.needs_second_factor(user, visitor.agency) and not record.second_factor:
            raise ConsoleDenied(f"{PREFIX}/totp")
    return visitor


def visitor_dependency(complete: bool) -> Callable[[Request, Session, Hub], Visitor]:
    def dependency(request: Request, session: SessionDep, hub: HubDep) -> Visitor:
        return signed_in(request, session, hub, complete=complete)

    return dependency


VisitorDep = Annotated[Visitor, Depends(visitor_dependency(True))]
StepDep = Annotated[Visitor, Depends(visitor_dependency(False))]
CsrfField = Annotated[str, Form(alias="csrf", max_length=100)]


def same_token(expected: str, given: str) -> bool:
    """Constant-time equality of two tokens, whatever characters a form sent."""
    return bool(expected) and secrets.compare_digest(expected.encode(), given.encode())


def check_csrf(visitor: Visitor, token: str) -> None:
    if not same_token(visitor.record.csrf_token, token):
        raise ConsoleForbidden()


class ConsoleForbidden(Exception):
    """A form without its session's CSRF token, or a page the user's roles do not open."""


def require(visitor: Visitor, role: Role) -> None:
    if not visitor.has(role):
        raise ConsoleForbidden()


# --- sign-in --------------------------------------------------------------------------------


@router.get("")
def home(request: Request, session: SessionDep, hub: HubDep) -> Response:
    visitor = signed_in(request, session, hub, complete=True)
    return redirect(f"{PREFIX}/desk" if visitor.has(Role.receiver) else f"{PREFIX}/sent")


@router.get("/login")
def login_form(request: Request, hub: HubDep) -> Response:
    token = secrets.token_urlsafe(32)  # login CSRF: the form and a cookie must agree
    response = page(request, "login.html", csrf=token, error=None)
    _set_cookie(response, request, hub, LOGIN_CSRF_COOKIE, token)
    return response


@router.post("/login")
def login(
    request: Request,
    hub: HubDep,
    csrf: CsrfField,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf):
        return page(request, "error.html", status=403, reason="csrf")
    try:  # per address: each attempt costs an argon2 hash, and spraying is slowed
        hub.console_logins.admit(request.client.host if request.client else "unknown")
    except RateLimited:
        return page(request, "error.html", status=429, reason="rate_limited")
    now = utcnow()
    # Its own unit of work: a refusal (counted, audited) must be kept although it fails.
    with hub.session() as session:
        user = accounts.authenticate(session, username=username, password=password, now=now)
        if user is not None:
            old = request.cookies.get(COOKIE)
            if old:  # never keep a session id from before the sign-in (no fixation)
                record = session.get(ConsoleSession, accounts.token_digest(old))
                if record is not None and record.ended_at is None:
                    accounts.end_session(session, record=record, now=now)
            token, _ = accounts.start_session(session, user=user, now=now)
    if user is None:
        retry = secrets.token_urlsafe(32)
        refused = page(request, "login.html", status=401, csrf=retry, error=t("user.login_refused"))
        _set_cookie(refused, request, hub, LOGIN_CSRF_COOKIE, retry)
        return refused
    response = redirect(PREFIX)
    _set_cookie(response, request, hub, COOKIE, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@router.get("/password")
def password_form(request: Request, visitor: StepDep) -> Response:
    return page(request, "password.html", visitor=visitor, error=None)


@router.post("/password")
def change_password(
    request: Request,
    session: SessionDep,
    visitor: StepDep,
    csrf: CsrfField,
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    check_csrf(visitor, csrf)
    if not visitor.user.password_must_change:
        # Only the one-time password is replaced here, before the second factor; changing a
        # password later is a reset (which ends every session).
        raise ConsoleForbidden()
    try:
        accounts.set_password(
            session,
            user=visitor.user,
            password=password,
            actor=visitor.principal.actor,
            now=utcnow(),
            keep=visitor.record,
        )
    except ExchangeError as refused:
        return page(request, "password.html", status=422, visitor=visitor, error=refused.message)
    return redirect(PREFIX)


@router.get("/reset/{token}")
def reset_form(request: Request, token: str) -> Response:
    """The page a one-time reset link opens (``exchange user reset``): choose a password."""
    return page(request, "reset.html", token=token, error=None)


@router.post("/reset/{token}")
def reset(
    request: Request,
    token: str,
    hub: HubDep,
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    # The token in the path is the proof; it works once, so a forged form gains nothing.
    try:
        with hub.session() as session:
            accounts.redeem_reset(session, token=token, password=password, now=utcnow())
    except ExchangeError as refused:
        return page(
            request, "reset.html", status=refused.status, token=token, error=refused.message
        )
    return redirect(f"{PREFIX}/login")


@router.get("/totp")
def totp_form(request: Request, session: SessionDep, hub: HubDep, visitor: StepDep) -> Response:
    enrolment = None
    if visitor.user.totp_confirmed_at is None:  # first time: a new secret to scan or type
        enrolment = accounts.enrol_totp(session, user=visitor.user, sealer=hub.keyring.sealer)
    return page(request, "totp.html", visitor=visitor, enrolment=enrolment, error=None)


@router.post("/totp")
def totp(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: StepDep,
    csrf: CsrfField,
    code: Annotated[str, Form(max_length=12)],
) -> Response:
    check_csrf(visitor, csrf)
    if not accounts.check_totp(
        session, user=visitor.user, code=code, sealer=hub.keyring.sealer, now=utcnow()
    ):
        return page(
            request,
            "totp.html",
            status=401,
            visitor=visitor,
            enrolment=None,
            error=t("user.login_refused"),
        )
    visitor.record.second_factor = True
    session.add(visitor.record)
    return redirect(PREFIX)


@router.post("/logout")
def logout(request: Request, session: SessionDep, visitor: StepDep, csrf: CsrfField) -> Response:
    check_csrf(visitor, csrf)
    accounts.sign_out(session, record=visitor.record, actor=visitor.principal.actor, now=utcnow())
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.post("/language")
def switch_language(
    request: Request, hub: HubDep, lang: Annotated[str, Form(max_length=2)]
) -> Response:
    response = redirect(f"{PREFIX}/login")
    _set_cookie(response, request, hub, LANGUAGE_COOKIE, "en" if lang == "en" else "id")
    return response


# --- the alert desk -------------------------------------------------------------------------


def _desk_rows(
    session: Session, visitor: Visitor, *, state: str | None, type_: str | None
) -> list[tuple[Delivery, Report]]:
    query = (
        select(Delivery, Report)
        .join(Report, col(Report.id) == col(Delivery.report_id))
        .where(Delivery.agency_id == visitor.agency.id)
        .order_by(col(Delivery.created_at).desc())
        .limit(DESK_PAGE)
    )
    if state == "new":
        query = query.where(col(Delivery.acknowledged_at).is_(None))
    elif state == "acknowledged":
        query = query.where(col(Delivery.acknowledged_at).is_not(None))
    if type_:
        query = query.where(Report.type == type_)
    return [(delivery, report) for delivery, report in session.exec(query).all()]


def _awaiting(session: Session, agency_id: str) -> tuple[int, str | None]:
    """How many deliveries to the agency await acknowledgement, and the newest's id: two
    index lookups, cheap enough for every open desk to ask each second."""
    waiting = (Delivery.agency_id == agency_id, col(Delivery.acknowledged_at).is_(None))
    count = session.exec(select(func.count()).select_from(Delivery).where(*waiting)).one()
    newest = session.exec(
        select(Delivery.id).where(*waiting).order_by(col(Delivery.created_at).desc()).limit(1)
    ).first()
    return int(count), newest


def _region_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = session.exec(select(Region.code, Region.name).where(col(Region.code).in_(codes)))
    return dict(rows.all())


@router.get("/desk")
def desk(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    state: str | None = None,
    type: str | None = None,
) -> Response:
    require(visitor, Role.receiver)
    rows = _desk_rows(session, visitor, state=state, type_=type)
    names = _region_names(session, {r.region for _, r in rows if r.region})
    new, newest = _awaiting(session, visitor.agency.id)
    return page(
        request,
        "desk.html",
        visitor=visitor,
        rows=rows,
        names=names,
        new=new,
        newest=newest or "",
        state=state or "",
        type=type or "",
        types=hub.registry.names(),
    )


@router.get("/desk/new")
def desk_new(request: Request, session: SessionDep, hub: HubDep) -> JSONResponse:
    """How many deliveries await acknowledgement, and the newest: the desk's script asks
    every second and reloads the list when it changed. Asking does not count as activity."""
    visitor = signed_in(request, session, hub, complete=True, touch=False)
    require(visitor, Role.receiver)
    count, newest = _awaiting(session, visitor.agency.id)
    return JSONResponse({"new": count, "newest": newest}, headers=SECURITY_HEADERS)


# --- a report -------------------------------------------------------------------------------


def _fields(
    hub: Hub, report: Report, data: dict[str, Any], locale: Locale
) -> list[tuple[str, str]]:
    """(label, value) for each leaf of the payload, labelled from its schema."""
    report_type = hub.registry.get(report.type, report.version)
    index = hub.registry.field_index(report_type)
    found: list[tuple[str, str]] = []
    for pattern, node in index.items():
        if node.get("type") in {"object", "array"}:
            continue
        for pointer, value in values_at(data, pattern):
            label = node.get("x-description-id" if locale == "id" else "description", pointer)
            labels = node.get("x-labels", {})
            if isinstance(value, bool):
                shown = t("console.yes" if value else "console.no").render(locale)
            elif isinstance(value, str) and value in labels:
                shown = labels[value][locale]
            else:
                shown = str(value)
            found.append((f"{label} ({pointer})", shown))
    return found


@router.get("/reports/{report_id}")
def report_page(
    request: Request, report_id: str, session: SessionDep, hub: HubDep, visitor: VisitorDep
) -> Response:
    try:
        report = reports.read(session, principal=visitor.principal, report_id=report_id)
        seen = protection.view(
            session,
            report=report,
            reader=visitor.agency,
            registry=hub.registry,
            sealer=hub.keyring.sealer,
        )
        thread, _ = reports.thread(session, principal=visitor.principal, report_id=report_id)
    except ExchangeError as refused:
        # A named person asked for a report its agency may not see (or none): the answer
        # is "not found" either way, and the asking is on the record.
        audit.record(
            session,
            action="report.read_refused",
            subject=f"report:{report_id}",
            actor=visitor.principal.actor,
            details={"code": refused.code},
        )
        reason = refused.code if refused.code in SHOWN_ERRORS else "other"
        return page(request, "error.html", status=refused.status, reason=reason)
    mine = [
        d
        for d in session.exec(
            select(Delivery).where(
                Delivery.report_id == report.id, Delivery.agency_id == visitor.agency.id
            )
        )
    ]
    return page(
        request,
        "report.html",
        visitor=visitor,
        report=report,
        fields=_fields(hub, report, seen.data, language(request)),
        withheld=seen.withheld,
        earlier=seen.earlier_reports,
        thread=thread,
        deliveries=mine,
        acknowledgeable=visitor.has(Role.receiver)
        and any(d.acknowledged_at is None and d.attempts > 0 for d in mine),
    )


@router.post("/reports/{report_id}/ack")
def acknowledge(
    request: Request,
    report_id: str,
    session: SessionDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(visitor, csrf)
    require(visitor, Role.receiver)
    pending = session.exec(
        select(Delivery).where(
            Delivery.report_id == report_id,
            Delivery.agency_id == visitor.agency.id,
            col(Delivery.acknowledged_at).is_(None),
            col(Delivery.state) != DeliveryState.dead,
            col(Delivery.attempts) > 0,
        )
    ).all()
    for delivery in pending:
        receipts.acknowledge(
            session,
            agency_id=visitor.agency.id,
            delivery_id=delivery.id,
            actor=visitor.principal.actor,
            note=note.strip() or None,
        )
    return redirect(f"{PREFIX}/reports/{report_id}")


# --- what the agency sent -------------------------------------------------------------------


@router.get("/sent")
def sent(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    require(visitor, Role.reporter)
    sent_reports = session.exec(
        select(Report)
        .where(Report.sender == visitor.agency.id)
        .order_by(col(Report.received_at).desc())
        .limit(DESK_PAGE)
    ).all()
    ids = [report.id for report in sent_reports]
    deliveries: dict[str, list[Delivery]] = {report_id: [] for report_id in ids}
    for delivery in session.exec(
        select(Delivery).where(col(Delivery.report_id).in_(ids)).order_by(col(Delivery.agency_id))
    ):
        deliveries[delivery.report_id].append(delivery)
    return page(request, "sent.html", visitor=visitor, reports=sent_reports, deliveries=deliveries)


def install(app: Any) -> None:
    """Mount the console's pages and its static files, and turn its refusals into pages."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    async def to_next_step(request: Request, denied: Exception) -> Response:
        assert isinstance(denied, ConsoleDenied)
        return redirect(denied.location)

    async def forbidden(request: Request, _: Exception) -> Response:
        return page(request, "error.html", status=403, reason="forbidden")

    app.add_exception_handler(ConsoleDenied, to_next_step)
    app.add_exception_handler(ConsoleForbidden, forbidden)
