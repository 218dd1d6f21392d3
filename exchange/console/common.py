"""What every console page shares: rendering (Jinja2, autoescaped, Indonesian first, times
in WIB), the signed-in visitor and the principal it acts as, CSRF checks and role checks.

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
from babel.numbers import format_decimal
from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from exchange.accounts import service as accounts
from exchange.accounts.models import ConsoleSession, Role, User
from exchange.agencies.models import Agency
from exchange.agencies.service import get_agency
from exchange.console.texts import TEXTS
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import ExchangeError
from exchange.hub import Hub
from exchange.i18n import Locale
from exchange.models import utcnow

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
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "manifest-src 'self'; worker-src 'self'"
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


class ConsoleDenied(Exception):
    """Raised to send the browser somewhere else (the sign-in page, the next step)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


# --- rendering ------------------------------------------------------------------------------


def language(request: Request) -> Locale:
    """Bahasa Indonesia first; English when the reader switched to it."""
    return "en" if request.cookies.get(LANGUAGE_COOKIE) == "en" else "id"


def say(locale: Locale, key: str, **params: Any) -> str:
    """A console text in the reader's language; a missing key fails the page (and the tests)."""
    return TEXTS[key][locale].format(**params)


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    locale = language(request)

    def text(key: str, **params: Any) -> str:
        return say(locale, key, **params)

    def when(moment: datetime | str | None) -> str:
        if moment is None:
            return "-"
        if isinstance(moment, str):  # an ISO 8601 instant, as the audit log writes them
            try:
                moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
            except ValueError:
                return str(moment)
        shown = format_datetime(moment, "d MMM y HH.mm.ss", tzinfo=JAKARTA, locale=locale)
        return f"{shown} WIB (UTC+07.00)"

    def number(value: int) -> str:
        return format_decimal(value, locale=locale)

    # Where the language switch comes back to: this page, when a GET can show it again.
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        here = PREFIX
    html = templates.get_template(template).render(
        _=text, when=when, number=number, locale=locale, prefix=PREFIX, here=here, **context
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def refusal(request: Request, refused: ExchangeError, visitor: Visitor | None) -> HTMLResponse:
    """The hub's refusal of an action, as a page: its status and its message, in the
    reader's language."""
    return page(
        request,
        "error.html",
        status=refused.status,
        visitor=visitor,
        reason="refused",
        problem=refused.message,
        details=refused.details,
    )


def confirmation(
    session: Session,
    hub: Hub,
    request: Request,
    visitor: Visitor,
    code: str,
    fields: list[tuple[str, str]],
) -> HTMLResponse | None:
    """None when the session may go ahead with an action that needs a fresh second factor;
    otherwise the page that asks for a code and posts the same form again with it."""
    if accounts.confirmed(
        session,
        record=visitor.record,
        user=visitor.user,
        code=code,
        sealer=hub.keyring.sealer,
        now=utcnow(),
    ):
        return None
    return page(
        request,
        "confirm.html",
        status=401,
        visitor=visitor,
        action=request.url.path,
        fields=fields,
        wrong=bool(code),
    )


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def _secure(request: Request, hub: Hub) -> bool:
    """Cookies are Secure except for a development hub reached on loopback over HTTP."""
    loopback = request.url.hostname in {"127.0.0.1", "localhost", "::1", "testserver"}
    return not (hub.settings.env.value == "dev" and loopback and request.url.scheme == "http")


def set_cookie(response: Response, request: Request, hub: Hub, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=_secure(request, hub),
        samesite="strict",
        path=PREFIX,
    )


# --- who is there ---------------------------------------------------------------------------


# The menu, in order: each role's page.
LANDINGS = (
    (Role.receiver, "/desk"),
    (Role.reporter, "/field"),
    (Role.auditor, "/audit"),
    (Role.agency_admin, "/admin"),
    (Role.hub_admin, "/admin"),
)


class Visitor:
    """A signed-in user: its session, its agency and the principal it acts as."""

    def __init__(self, record: ConsoleSession, user: User, agency: Agency) -> None:
        self.record = record
        self.user = user
        self.agency = agency
        self.principal = accounts.principal_of(user, agency)

    def has(self, role: Role) -> bool:
        return role in self.user.role_set

    @property
    def administers(self) -> bool:
        return self.has(Role.agency_admin) or self.has(Role.hub_admin)

    def landing(self) -> str:
        """The first page the user's roles open, in the menu's order."""
        for role, path in LANDINGS:
            if self.has(role):
                return path
        return "/password"  # every user has a role; this is only a safe end


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
