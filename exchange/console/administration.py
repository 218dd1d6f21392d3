"""Administration: an agency's users, API keys, subscriptions (with a test send), dead
deliveries (replay, recover) and signing keys; for the hub's administrators also every
agency, the region directory and the state of the hub's own keys.

An agency admin administers its own agency; a hub admin (a user of the operator agency)
every agency. Each action goes through the same services as the API and the CLI, acting as
the signed-in user, so the audit log names the person. A secret (a one-time password, a
reset link, an API key, a webhook secret) is shown once, on the page that answers the form,
and never again: the hub keeps only its hash or its sealed form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, col, func, select
from starlette.datastructures import UploadFile

from connectors.registry import factory, installed
from exchange.accounts import service as accounts
from exchange.accounts.models import Role, User
from exchange.agencies import service as agencies
from exchange.agencies.models import Agency, AgencyKind, ApiKey, Scope, SigningKey
from exchange.console.common import (
    JAKARTA,
    PREFIX,
    ConsoleForbidden,
    CsrfField,
    Visitor,
    VisitorDep,
    check_csrf,
    confirmation,
    page,
    redirect,
    refusal,
    signed_in,
)
from exchange.delivery import service as deliveries
from exchange.delivery.models import Delivery, DeliveryState
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import ExchangeError, InvalidInput
from exchange.hub import Hub
from exchange.i18n import t
from exchange.jsonbody import HubRoute
from exchange.models import utcnow
from exchange.regions import service as regions
from exchange.regions.models import Region
from exchange.routing import service as routing
from exchange.routing.contracts import SubscriptionCreate, SubscriptionOut
from exchange.routing.models import Subscription

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=HubRoute)
DEAD_PAGE = 100
ADMIN = f"{PREFIX}/admin"
DEFAULT_KEY_LIFETIME = timedelta(days=90)  # what the form proposes; a year at most
Checked = Annotated[list[str], Form()]


def is_hub_admin(visitor: Visitor) -> bool:
    return visitor.has(Role.hub_admin) and visitor.agency.kind == AgencyKind.operator


def administered(visitor: Visitor, agency_id: str) -> None:
    """An agency admin administers its own agency; a hub admin every agency."""
    if is_hub_admin(visitor):
        return
    if visitor.has(Role.agency_admin) and visitor.agency.id == agency_id:
        return
    raise ConsoleForbidden()


def hub_admin(visitor: Visitor) -> None:
    if not is_hub_admin(visitor):
        raise ConsoleForbidden()


def _agency_page(agency_id: str) -> str:
    return f"{ADMIN}/agencies/{agency_id}"


@router.get("/admin")
def overview(request: Request, session: SessionDep, hub: HubDep, visitor: VisitorDep) -> Response:
    """Every agency, for a hub admin; an agency admin goes straight to its own."""
    if not visitor.has(Role.hub_admin):
        administered(visitor, visitor.agency.id)
        return redirect(_agency_page(visitor.agency.id))
    hub_admin(visitor)
    users = dict(
        session.exec(select(User.agency_id, func.count()).group_by(col(User.agency_id))).all()
    )
    return page(
        request,
        "admin.html",
        visitor=visitor,
        agencies=agencies.list_agencies(session),
        users=users,
    )


def _dead(session: Session, agency_id: str) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery)
            .where(Delivery.agency_id == agency_id, Delivery.state == DeliveryState.dead)
            .order_by(col(Delivery.created_at).desc())
            .limit(DEAD_PAGE)
        )
    )


@router.get("/admin/agencies/{agency_id}")
def agency_page(
    request: Request, agency_id: str, session: SessionDep, visitor: VisitorDep
) -> Response:
    administered(visitor, agency_id)
    agency = agencies.get_agency(session, agency_id)
    keys = agencies.list_api_keys(session, agency_id=agency_id)
    return page(
        request,
        "agency.html",
        visitor=visitor,
        agency=agency,
        users=accounts.list_users(session, agency_id=agency_id),
        keys=keys,
        subscriptions=[
            SubscriptionOut.of(s) for s in routing.list_subscriptions(session, agency_id=agency_id)
        ],
        signing_keys=agencies.list_signing_keys(session, agency_id=agency_id),
        dead=_dead(session, agency_id),
        roles=[r for r in Role if r != Role.hub_admin or is_hub_admin(visitor)],
        scopes=list(Scope) if is_hub_admin(visitor) else sorted(agencies.PERSON_GRANTABLE),
        makers=_makers(session, keys),
        default_expiry=(utcnow() + DEFAULT_KEY_LIFETIME).astimezone(JAKARTA).date(),
        connectors=sorted(installed()),
    )


def _makers(session: Session, keys: list[ApiKey]) -> dict[str, str]:
    """The usernames of the people who issued ``keys``."""
    ids = {k.created_by_user for k in keys if k.created_by_user}
    if not ids:
        return {}
    rows = session.exec(select(User.id, User.username).where(col(User.id).in_(ids)))
    return dict(rows.all())


def _done(
    request: Request, visitor: Visitor, agency_id: str, action: Callable[[], object]
) -> Response:
    """Do ``action``; back to the agency's page, or the refusal as a page."""
    try:
        action()
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    return redirect(_agency_page(agency_id))


def _shown_once(request: Request, visitor: Visitor, agency: Agency, **shown: Any) -> Response:
    """The answer that carries a secret: this page, once; nothing stores it for later."""
    return page(request, "issued.html", visitor=visitor, agency=agency, **shown)


# --- users ------------------------------------------------------------------------------------


Code = Annotated[str, Form(max_length=8)]


@router.post("/admin/agencies/{agency_id}/users")
def add_user(
    request: Request,
    agency_id: str,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=200)],
    phone: Annotated[str, Form(max_length=32)] = "",
    roles: Checked = [],  # noqa: B006 - FastAPI copies form defaults
    code: Code = "",
) -> Response:
    check_csrf(visitor, csrf)
    administered(visitor, agency_id)
    agency = agencies.get_agency(session, agency_id)
    wanted = frozenset(Role(r) for r in roles if r in Role._value2member_map_)
    if Role.hub_admin in wanted and not is_hub_admin(visitor):
        raise ConsoleForbidden()  # only a hub admin makes another
    fields = [("username", username), ("display_name", display_name), ("phone", phone)]
    asked = confirmation(
        session, hub, request, visitor, code, fields + [("roles", r) for r in roles]
    )
    if asked is not None:
        return asked
    try:
        user, password = accounts.create_user(
            session,
            agency=agency,
            username=username,
            display_name=display_name.strip() or username,
            roles=wanted,
            actor=visitor.principal.actor,
            phone=phone,
        )
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    return _shown_once(
        request, visitor, agency, what="one_time_password", who=user.username, secret=password
    )


def _user_of(session: Session, visitor: Visitor, user_id: str) -> User:
    """A user the visitor administers: of its agency (any, for a hub admin), and holding no
    role the visitor lacks, so that no one resets the way into more than it has."""
    user = session.get(User, user_id)
    if user is None:
        raise accounts.UserNotFound(t("user.not_found", username=user_id))
    administered(visitor, user.agency_id)
    if not user.role_set <= visitor.user.role_set:
        raise ConsoleForbidden()
    return user


@router.post("/admin/users/{user_id}/disable")
def disable_user(
    request: Request, user_id: str, session: SessionDep, visitor: VisitorDep, csrf: CsrfField
) -> Response:
    check_csrf(visitor, csrf)
    try:
        user = _user_of(session, visitor, user_id)
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    accounts.disable_user(session, user=user, actor=visitor.principal.actor, now=utcnow())
    return redirect(_agency_page(user.agency_id))


def _confirmed_user(
    request: Request, session: Session, hub: Hub, visitor: Visitor, user_id: str, code: str
) -> User | Response:
    """The user to act on, once the visitor may and has confirmed with a fresh code; else
    the page that says why not, or that asks for the code."""
    try:
        user = _user_of(session, visitor, user_id)
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    return confirmation(session, hub, request, visitor, code, []) or user


@router.post("/admin/users/{user_id}/reset")
def reset_user(
    request: Request,
    user_id: str,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    code: Code = "",
) -> Response:
    check_csrf(visitor, csrf)
    user = _confirmed_user(request, session, hub, visitor, user_id, code)
    if isinstance(user, Response):
        return user
    token = accounts.issue_reset(session, user=user, actor=visitor.principal.actor, now=utcnow())
    link = str(request.url_for("reset_form", token=token))
    agency = agencies.get_agency(session, user.agency_id)
    return _shown_once(request, visitor, agency, what="reset_link", who=user.username, secret=link)


@router.post("/admin/users/{user_id}/totp")
def forget_authenticator(
    request: Request,
    user_id: str,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    code: Code = "",
) -> Response:
    check_csrf(visitor, csrf)
    user = _confirmed_user(request, session, hub, visitor, user_id, code)
    if isinstance(user, Response):
        return user
    accounts.reset_totp(session, user=user, actor=visitor.principal.actor, now=utcnow())
    return redirect(_agency_page(user.agency_id))


# --- API keys ---------------------------------------------------------------------------------


@router.post("/admin/agencies/{agency_id}/keys")
def issue_key(
    request: Request,
    agency_id: str,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    expires: Annotated[date, Form()],
    label: Annotated[str, Form(max_length=200)] = "",
    scopes: Checked = [],  # noqa: B006 - FastAPI copies form defaults
    code: Code = "",
) -> Response:
    """A key for one of the agency's systems, valid until the end of ``expires`` (WIB)."""
    check_csrf(visitor, csrf)
    administered(visitor, agency_id)
    agency = agencies.get_agency(session, agency_id)
    wanted = [Scope(s) for s in scopes if s in Scope._value2member_map_]
    if not wanted:
        return refusal(request, InvalidInput.at(t("admin.no_scope"), "/scopes"), visitor)
    fields = [("label", label), ("expires", expires.isoformat())]
    asked = confirmation(
        session, hub, request, visitor, code, fields + [("scopes", s) for s in scopes]
    )
    if asked is not None:
        return asked
    try:
        issued = agencies.create_api_key(
            session,
            agency_id=agency_id,
            scopes=wanted,
            label=label.strip(),
            expires_at=datetime.combine(expires, time.max, tzinfo=JAKARTA),
            granted_by=visitor.principal,
            actor=visitor.principal.actor,
        )
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    return _shown_once(
        request, visitor, agency, what="api_key", who=issued.key.id, secret=issued.token
    )


@router.post("/admin/agencies/{agency_id}/keys/{key_id}/revoke")
def revoke_key(
    request: Request,
    agency_id: str,
    key_id: str,
    session: SessionDep,
    visitor: VisitorDep,
    csrf: CsrfField,
) -> Response:
    check_csrf(visitor, csrf)
    administered(visitor, agency_id)
    return _done(
        request,
        visitor,
        agency_id,
        lambda: agencies.revoke_api_key(
            session, agency_id=agency_id, key_id=key_id, actor=visitor.principal.actor
        ),
    )


@router.post("/admin/agencies/{agency_id}/signing-keys/{key_id}/approve")
def approve_signing_key(
    request: Request,
    agency_id: str,
    key_id: str,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    code: Code = "",
) -> Response:
    """The second admin's approval of a signing key (someone else than who added it)."""
    check_csrf(visitor, csrf)
    administered(visitor, agency_id)
    asked = confirmation(session, hub, request, visitor, code, [])
    if asked is not None:
        return asked
    return _done(
        request,
        visitor,
        agency_id,
        lambda: agencies.approve_signing_key(
            session, agency_id=agency_id, key_id=key_id, approver=visitor.principal
        ),
    )


# --- subscriptions ----------------------------------------------------------------------------


def config_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The fields of a connector's config model a person fills in: its JSON Schema's plain
    properties (text, number, list of text). Secrets the hub generates, and properties that
    only rotation sets, are left out."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    fields = []
    for name, spec in schema.get("properties", {}).items():
        kind = spec.get("type")
        if spec.get("writeOnly") or kind is None:
            continue
        if kind == "array" and spec.get("items", {}).get("type") != "string":
            continue
        fields.append(
            {
                "name": name,
                "kind": kind,
                "title": spec.get("title", name),
                "description": spec.get("description", ""),
                "required": name in required,
                "default": spec.get("default", ""),
            }
        )
    return fields


def _config_from_form(fields: list[dict[str, Any]], form: Any) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field in fields:
        raw = str(form.get(f"config.{field['name']}", "")).strip()
        if not raw:
            continue
        if field["kind"] == "array":
            config[field["name"]] = [
                v.strip() for v in raw.replace(",", "\n").split("\n") if v.strip()
            ]
        else:
            config[field["name"]] = raw  # pydantic turns "300" into 300 where it must
    return config


def _lines(raw: str) -> list[str]:
    return [v.strip() for v in raw.replace(",", "\n").split("\n") if v.strip()]


@router.get("/admin/agencies/{agency_id}/subscriptions/new")
def subscription_form(
    request: Request,
    agency_id: str,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    connector: str = "webhook",
) -> Response:
    """The form for one connector: its fields come from the connector's own config model,
    so a connector added as a plugin gets its form without a change here."""
    administered(visitor, agency_id)
    if connector not in installed():
        connector = "webhook"
    return page(
        request,
        "subscription.html",
        visitor=visitor,
        agency=agencies.get_agency(session, agency_id),
        connector=connector,
        connectors=sorted(installed()),
        fields=config_fields(factory(connector).config_model),
        types=hub.registry.names(),
    )


@router.post("/admin/agencies/{agency_id}/subscriptions")
async def create_subscription(request: Request, agency_id: str, hub: HubDep) -> Response:
    """Read the form here (its config fields depend on the connector), then create the
    subscription like the API does, off the event loop; generated secrets show this once."""
    form = await request.form()
    connector = str(form.get("connector", ""))
    fields = config_fields(factory(connector).config_model) if connector in installed() else []
    body: dict[str, Any] = {
        "label": str(form.get("label", "")).strip(),
        "types": [str(v) for v in form.getlist("types")],
        "regions": _lines(str(form.get("regions", ""))),
        "indicators": _lines(str(form.get("indicators", ""))),
        "connector": connector,
        "config": _config_from_form(fields, form),
    }
    if form.get("min_severity"):
        body["min_severity"] = str(form.get("min_severity"))
    sent = Sent(
        csrf=str(form.get("csrf", "")),
        code=str(form.get("code", "")),
        fields=[
            (k, v)
            for k, v in form.multi_items()
            if k not in {"csrf", "code"} and isinstance(v, str)
        ],
    )
    return await run_in_threadpool(_create_subscription, request, hub, agency_id, sent, body)


@dataclass(frozen=True)
class Sent:
    """A form read by an async route, for the work it hands to a thread."""

    csrf: str
    code: str
    fields: list[tuple[str, str]]


def _create_subscription(
    request: Request, hub: Hub, agency_id: str, sent: Sent, body: dict[str, Any]
) -> Response:
    with hub.session() as session:
        visitor = signed_in(request, session, hub, complete=True)
        check_csrf(visitor, sent.csrf)
        administered(visitor, agency_id)
        agency = agencies.get_agency(session, agency_id)
        try:
            wanted = SubscriptionCreate.model_validate(body)
        except ValidationError as invalid:
            return refusal(request, _invalid_form(invalid), visitor)
        # A new destination for the agency's reports: a stolen cookie must not add one.
        asked = confirmation(session, hub, request, visitor, sent.code, sent.fields)
        if asked is not None:
            return asked
        try:
            subscription, secrets = routing.create_subscription(
                session,
                agency_id=agency_id,
                request=wanted,
                registry=hub.registry,
                context=hub.connector_context,
                sealer=hub.keyring.sealer,
                limit=hub.settings.max_subscriptions_per_agency,
                actor=visitor.principal.actor,
            )
        except ExchangeError as refused:
            session.rollback()
            return refusal(request, refused, visitor)
        subscription_id = subscription.id
    if not secrets:
        return redirect(_agency_page(agency_id))
    return _shown_once(
        request,
        visitor,
        agency,
        what="subscription_secret",
        who=subscription_id,
        secret=" ".join(secrets.values()),
    )


def _invalid_form(invalid: ValidationError) -> InvalidInput:
    first = invalid.errors()[0]
    pointer = "/" + "/".join(str(p) for p in first["loc"])
    return InvalidInput.at(t("form.invalid_field", field=pointer, reason=first["msg"]), pointer)


def _subscription_of(session: Session, visitor: Visitor, subscription_id: str) -> Subscription:
    subscription = routing.get_subscription(
        session, agency_id=None, subscription_id=subscription_id
    )
    administered(visitor, subscription.agency_id)
    return subscription


@router.post("/admin/subscriptions/{subscription_id}/test")
def test_send(request: Request, subscription_id: str, hub: HubDep, csrf: CsrfField) -> Response:
    """Send a test envelope through the subscription now and show what came of it. No
    session stays open while the recipient answers (it may take the whole timeout)."""
    with hub.session() as session:
        visitor = signed_in(request, session, hub, complete=True)
        check_csrf(visitor, csrf)
        try:
            subscription = _subscription_of(session, visitor, subscription_id)
            # Each holds a thread for up to the connector's timeout, and may send mail.
            hub.console_test_sends.admit(visitor.principal.key_id)
        except ExchangeError as refused:
            return refusal(request, refused, visitor)
        claim = deliveries.test_claim(
            session,
            subscription=subscription,
            sealer=hub.keyring.sealer,
            actor=visitor.principal.actor,
        )
        agency = agencies.get_agency(session, subscription.agency_id)
    result = deliveries.attempt(claim, context=hub.connector_context)
    return page(
        request,
        "tested.html",
        visitor=visitor,
        agency=agency,
        subscription_id=subscription_id,
        envelope_id=claim.delivery_id,
        result=result,
    )


@router.post("/admin/subscriptions/{subscription_id}/delete")
def delete_subscription(
    request: Request,
    subscription_id: str,
    session: SessionDep,
    visitor: VisitorDep,
    csrf: CsrfField,
) -> Response:
    check_csrf(visitor, csrf)
    try:
        subscription = _subscription_of(session, visitor, subscription_id)
        routing.delete_subscription(
            session,
            agency_id=subscription.agency_id,
            subscription_id=subscription_id,
            actor=visitor.principal.actor,
        )
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    return redirect(_agency_page(subscription.agency_id))


# --- deliveries -------------------------------------------------------------------------------


@router.post("/admin/agencies/{agency_id}/deliveries/{delivery_id}/replay")
def replay(
    request: Request,
    agency_id: str,
    delivery_id: str,
    session: SessionDep,
    visitor: VisitorDep,
    csrf: CsrfField,
) -> Response:
    check_csrf(visitor, csrf)
    administered(visitor, agency_id)
    return _done(
        request,
        visitor,
        agency_id,
        lambda: deliveries.replay(
            session, agency_id=agency_id, delivery_id=delivery_id, actor=visitor.principal.actor
        ),
    )


@router.post("/admin/agencies/{agency_id}/deliveries/recover")
def recover(
    request: Request,
    agency_id: str,
    session: SessionDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    since: Annotated[datetime, Form()],
    until: Annotated[datetime | None, Form()] = None,
) -> Response:
    """Replay every dead delivery of the agency routed in [since, until)."""
    check_csrf(visitor, csrf)
    administered(visitor, agency_id)
    try:
        period = _aware(since, "since"), _aware(until, "until") if until else utcnow()
    except InvalidInput as refused:
        return refusal(request, refused, visitor)
    deliveries.recover(
        session,
        agency_id=agency_id,
        since=period[0],
        until=period[1],
        actor=visitor.principal.actor,
    )
    return redirect(_agency_page(agency_id))


def _aware(moment: datetime, name: str) -> datetime:
    """A browser's datetime-local has no offset: the console means WIB. A moment that
    cannot be one in UTC (year 1 in WIB) is refused."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=JAKARTA)
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        raise InvalidInput.at(t("validation.instant_range"), f"/{name}") from None


# --- the hub: regions and keys ----------------------------------------------------------------


@router.get("/admin/hub")
def hub_page(request: Request, session: SessionDep, hub: HubDep, visitor: VisitorDep) -> Response:
    """The region directory and the hub's keys: what is in force, what awaits approval."""
    hub_admin(visitor)
    pending = session.exec(
        select(SigningKey)
        .where(
            col(SigningKey.approved_at).is_(None),
            col(SigningKey.revoked_at).is_(None),
        )
        .order_by(col(SigningKey.created_at))
    ).all()
    return page(
        request,
        "hub.html",
        visitor=visitor,
        regions=session.exec(select(func.count()).select_from(Region)).one(),
        published=hub.keyring.public_document()["keys"],
        log_key=hub.keyring.log_verifier_key(),
        sealing=hub.keyring.sealer.key_ids,
        sealing_active=hub.keyring.sealer.active_key_id,
        pending=pending,
    )


@router.post("/admin/hub/regions")
async def import_regions(request: Request, hub: HubDep) -> Response:
    """Replace the region directory with an uploaded Kemendagri code list (CSV code,name).
    The route may carry a large body: it is read only once the session is a hub admin's."""
    await run_in_threadpool(_hub_admin_signed_in, request, hub)
    form = await request.form()
    upload = form.get("directory")
    content = await upload.read() if isinstance(upload, UploadFile) else None
    sent = Sent(csrf=str(form.get("csrf", "")), code=str(form.get("code", "")), fields=[])
    return await run_in_threadpool(_import_regions, request, hub, sent, content)


def _hub_admin_signed_in(request: Request, hub: Hub) -> None:
    with hub.session() as session:
        hub_admin(signed_in(request, session, hub, complete=True, touch=False))


def _import_regions(request: Request, hub: Hub, sent: Sent, content: bytes | None) -> Response:
    with hub.session() as session:
        visitor = signed_in(request, session, hub, complete=True)
        check_csrf(visitor, sent.csrf)
        hub_admin(visitor)
        if not accounts.confirmed(
            session,
            record=visitor.record,
            user=visitor.user,
            code=sent.code,
            sealer=hub.keyring.sealer,
            now=utcnow(),
        ):  # the file cannot travel through the confirmation page: the code is on the form
            needed = InvalidInput.at(t("user.confirm_needed"), "/code")
            return refusal(request, needed, visitor)
        try:
            if not content:
                raise InvalidInput.at(t("admin.no_file"), "/directory")
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise InvalidInput.at(t("admin.not_utf8"), "/directory") from None
            regions.import_directory(
                session, lines=text.splitlines(), actor=visitor.principal.actor
            )
        except ExchangeError as refused:
            session.rollback()
            return refusal(request, refused, visitor)
    return redirect(f"{ADMIN}/hub")
