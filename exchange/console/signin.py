"""Signing in (password, one's own password, the second factor), password resets,
signing out and the language switch."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from exchange.accounts import service as accounts
from exchange.accounts.models import ConsoleSession
from exchange.console.common import (
    COOKIE,
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    PREFIX,
    ConsoleForbidden,
    CsrfField,
    StepDep,
    check_csrf,
    page,
    redirect,
    same_token,
    set_cookie,
    signed_in,
)
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import ExchangeError
from exchange.i18n import t
from exchange.jsonbody import HubRoute
from exchange.models import utcnow
from exchange.ratelimit import RateLimited

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=HubRoute)


@router.get("")
def home(request: Request, session: SessionDep, hub: HubDep) -> Response:
    """Each user lands on the first page its roles open."""
    visitor = signed_in(request, session, hub, complete=True)
    return redirect(PREFIX + visitor.landing())


@router.get("/login")
def login_form(request: Request, hub: HubDep) -> Response:
    token = secrets.token_urlsafe(32)  # login CSRF: the form and a cookie must agree
    response = page(request, "login.html", csrf=token, error=None)
    set_cookie(response, request, hub, LOGIN_CSRF_COOKIE, token)
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
        set_cookie(refused, request, hub, LOGIN_CSRF_COOKIE, retry)
        return refused
    response = redirect(PREFIX)
    set_cookie(response, request, hub, COOKIE, token)
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
    accounts.confirm(session, record=visitor.record, now=utcnow())
    return redirect(PREFIX)


@router.post("/logout")
def logout(request: Request, session: SessionDep, visitor: StepDep, csrf: CsrfField) -> Response:
    check_csrf(visitor, csrf)
    accounts.sign_out(session, record=visitor.record, actor=visitor.principal.actor, now=utcnow())
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    # The field form's outbox, its key and the form kept for offline use leave the device.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@router.post("/language")
def switch_language(
    request: Request,
    hub: HubDep,
    lang: Annotated[str, Form(max_length=2)],
    back: Annotated[str, Form(alias="next", max_length=2000)] = PREFIX,
) -> Response:
    """Switch between Bahasa Indonesia and English and come back to the same page (only
    ever a console page: never a redirect to another site)."""
    inside = back.startswith(f"{PREFIX}/") and "//" not in back and "\\" not in back
    response = redirect(back if inside else PREFIX)
    set_cookie(response, request, hub, LANGUAGE_COOKIE, "en" if lang == "en" else "id")
    return response
