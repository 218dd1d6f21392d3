"""Agencies, their API keys and signing keys. Functions take the session first and never commit."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlmodel import Session, col, select

from exchange.agencies.models import (
    DEFAULT_CLEARANCE,
    Agency,
    AgencyKind,
    ApiKey,
    Scope,
    Sensitivity,
    SigningKey,
)
from exchange.audit import service as audit
from exchange.crypto import b64url, jwk_thumbprint, raw_public_bytes
from exchange.delivery.models import end_due_deliveries
from exchange.directory import Kept
from exchange.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from exchange.i18n import Text, t
from exchange.models import utcnow

TOKEN_PREFIX = "exk"  # noqa: S105 - a public prefix, not a secret


class AgencyNotFound(NotFound):
    """Raised when an agency id names no agency."""

    code = "agency_not_found"


class AgencyExists(Conflict):
    """Raised when an agency is created with an id already taken."""

    code = "agency_exists"


class KeyNotFound(NotFound):
    """Raised when a key id names no key of the agency."""

    code = "key_not_found"


class ScopeMissing(PermissionDenied):
    """Raised when the caller's key lacks the scope an action needs."""

    code = "scope_missing"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the agency behind a valid, unrevoked, unexpired API key.

    ``admin`` administers the key's own agency (its keys and signing keys); on the operator
    agency (kind ``operator``) it administers the whole hub."""

    agency_id: str
    key_id: str
    scopes: frozenset[Scope]
    operator: bool = False  # the key belongs to the hub operator's agency
    expires_at: datetime | None = None
    user_id: str | None = None  # a console user acting with its roles' scopes

    @property
    def actor(self) -> str:
        """How the audit log names this caller: the key, or the named user."""
        if self.user_id is not None:
            return f"agency:{self.agency_id}/user:{self.user_id}"
        return f"agency:{self.agency_id}/key:{self.key_id}"

    @property
    def is_hub_admin(self) -> bool:
        return self.operator and Scope.admin in self.scopes

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise ScopeMissing(t("auth.scope_missing", scope=scope.value))

    def require_hub_admin(self) -> None:
        if not self.is_hub_admin:
            raise ScopeMissing(t("auth.hub_admin_only"))

    def require_self_or_hub_admin(self, agency_id: str) -> None:
        if agency_id != self.agency_id and not self.is_hub_admin:
            raise PermissionDenied(t("auth.not_own_agency", agency=agency_id))

    def require_admin_of(self, agency_id: str) -> None:
        """Managing an agency's keys: an admin key of that agency, or the hub admin."""
        self.require_self_or_hub_admin(agency_id)
        self.require(Scope.admin)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str  # shown once; only its hash is stored


# --- agencies -------------------------------------------------------------------------------


def _subject(agency_id: str) -> str:
    return f"agency:{agency_id}"


def create_agency(
    session: Session,
    *,
    agency_id: str,
    name: str,
    kind: AgencyKind,
    jurisdiction: str,
    clearance: Iterable[Sensitivity] = DEFAULT_CLEARANCE,
    actor: str,
) -> Agency:
    if session.get(Agency, agency_id) is not None:
        raise AgencyExists(t("agency.exists", agency=agency_id))
    classes = sorted(Sensitivity(c).value for c in set(clearance))
    agency = Agency(
        id=agency_id, name=name, kind=kind, jurisdiction=jurisdiction, clearance=" ".join(classes)
    )
    session.add(agency)
    session.flush()
    audit.record(
        session,
        action="agency.created",
        subject=_subject(agency_id),
        actor=actor,
        details={"kind": kind.value, "jurisdiction": jurisdiction, "clearance": classes},
    )
    return agency


def get_agency(session: Session, agency_id: str) -> Agency:
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise AgencyNotFound(t("agency.not_found", agency=agency_id))
    return agency


def list_agencies(session: Session) -> list[Agency]:
    return list(session.exec(select(Agency).order_by(col(Agency.id))))


def update_agency(
    session: Session,
    agency_id: str,
    *,
    name: str | None = None,
    jurisdiction: str | None = None,
    active: bool | None = None,
    require_signed_reports: bool | None = None,
    require_signing_key_approval: bool | None = None,
    clearance: Iterable[Sensitivity] | None = None,
    actor: str,
) -> Agency:
    agency = get_agency(session, agency_id)
    changes: dict[str, str | bool | list[str] | int] = {}
    if name is not None and name != agency.name:
        agency.name = changes["name"] = name
    if jurisdiction is not None and jurisdiction != agency.jurisdiction:
        agency.jurisdiction = changes["jurisdiction"] = jurisdiction
    if active is not None and active != agency.active:
        agency.active = changes["active"] = active
        ended = (
            0
            if active
            else end_due_deliveries(session, reason="recipient deactivated", agency_id=agency_id)
        )
        if ended:
            changes["ended_deliveries"] = ended
    if (
        require_signed_reports is not None
        and require_signed_reports != agency.require_signed_reports
    ):
        agency.require_signed_reports = changes["require_signed_reports"] = require_signed_reports
    if (
        require_signing_key_approval is not None
        and require_signing_key_approval != agency.require_signing_key_approval
    ):
        agency.require_signing_key_approval = changes["require_signing_key_approval"] = (
            require_signing_key_approval
        )
    if clearance is not None and frozenset(clearance) != agency.clearance_set:
        classes = sorted(Sensitivity(c).value for c in set(clearance))
        agency.clearance = " ".join(classes)
        changes["clearance"] = classes
    if changes:
        session.add(agency)
        session.flush()
        audit.record(
            session,
            action="agency.updated",
            subject=_subject(agency_id),
            actor=actor,
            details={"changed": changes},
        )
    return agency


# --- API keys -------------------------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    # A single SHA-256 suffices: the secret is 256 random bits, so there is nothing for a
    # slow password hash to protect against, and every request pays for the check.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _parse_token(token: str) -> tuple[str, str] | None:
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def public_key_id(token: str) -> str | None:
    """The public id part of a token (safe to log and audit), if it has that shape."""
    parsed = _parse_token(token)
    return parsed[0][:32] if parsed else None


PERSON_GRANTABLE = frozenset({Scope.submit, Scope.receive})
PERSON_KEY_LIFETIME = timedelta(days=366)


def create_api_key(
    session: Session,
    *,
    agency_id: str,
    scopes: Iterable[Scope],
    label: str = "",
    expires_at: datetime | None = None,
    granted_by: Principal | None = None,
    actor: str,
) -> IssuedKey:
    """A new key for the agency. Made through the API (``granted_by``), a key never outlives
    the key that made it, and within its own agency never holds a scope that key lacks: a
    stolen key cannot mint itself a longer-lived or stronger successor. Only the hub admin,
    provisioning another agency, grants scopes it does not hold itself."""
    get_agency(session, agency_id)
    wanted = sorted(set(scopes), key=lambda s: s.value)
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise _invalid_expiry(t("validation.expiry_past"))
    if granted_by is not None:
        if Scope.admin in wanted and not granted_by.is_hub_admin:
            # A second admin key comes from the hub's operator, never from the first: one
            # stolen admin key cannot make itself the "second admin" that approves its own
            # signing key, nor an admin successor that outlives its revocation.
            raise PermissionDenied(t("auth.admin_from_hub_only"))
        # A key cannot pass on what it lacks (a stolen key gains nothing by minting). A
        # named administrator (a console user, with a fresh second factor) grants its
        # agency's systems what they exchange with, submit and receive, for at most a year;
        # the hub-wide scopes (audit, metrics) come from the hub admin.
        if granted_by.user_id is not None:
            if not granted_by.is_hub_admin:
                for scope in wanted:
                    if scope not in PERSON_GRANTABLE:
                        raise PermissionDenied(t("auth.scope_not_grantable", scope=scope.value))
            latest = now + PERSON_KEY_LIFETIME
            if expires_at is None or expires_at > latest:
                raise _invalid_expiry(t("validation.expiry_person", limit=latest.date()))
        elif granted_by.agency_id == agency_id or not granted_by.is_hub_admin:
            for scope in wanted:
                if scope not in granted_by.scopes:
                    raise PermissionDenied(t("auth.scope_not_grantable", scope=scope.value))
        limit = granted_by.expires_at
        if limit is not None and (expires_at is None or expires_at > limit):
            raise _invalid_expiry(t("validation.expiry_beyond_granter", limit=limit.isoformat()))
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        agency_id=agency_id,
        label=label,
        secret_hash=_hash_secret(secret),
        scopes=" ".join(s.value for s in wanted),
        expires_at=expires_at,
        created_by=(
            granted_by.key_id
            if granted_by is not None
            and granted_by.user_id is None
            and granted_by.agency_id == agency_id
            else None
        ),
        created_by_user=granted_by.user_id if granted_by is not None else None,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        action="api_key.created",
        subject=_subject(agency_id),
        actor=actor,
        details={
            "key_id": key_id,
            "scopes": [s.value for s in wanted],
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return IssuedKey(key=key, token=f"{TOKEN_PREFIX}_{key_id}_{secret}")


def _invalid_expiry(message: Text) -> InvalidInput:
    return InvalidInput.at(message, "/expires_at")


def list_api_keys(session: Session, *, agency_id: str) -> list[ApiKey]:
    get_agency(session, agency_id)
    query = select(ApiKey).where(ApiKey.agency_id == agency_id).order_by(col(ApiKey.created_at))
    return list(session.exec(query))


def revoke_api_key(session: Session, *, agency_id: str, key_id: str, actor: str) -> ApiKey:
    """Revoke a key, and every live key of the agency it made (and they made, and so on): a
    key never outlives the key that made it, so a stolen key's offspring end with it."""
    key = _revoke(session, ApiKey, agency_id=agency_id, key_id=key_id, actor=actor)
    makers = [key_id]
    while makers:
        offspring = session.exec(
            select(ApiKey).where(
                ApiKey.agency_id == agency_id,
                col(ApiKey.created_by).in_(makers),
                col(ApiKey.revoked_at).is_(None),
            )
        ).all()
        for child in offspring:
            _revoke(session, ApiKey, agency_id=agency_id, key_id=child.id, actor=actor)
        makers = [child.id for child in offspring]
    return key


_Key = TypeVar("_Key", ApiKey, SigningKey)


_REVOKED_ACTION = {ApiKey: "api_key.revoked", SigningKey: "signing_key.revoked"}


def _revoke(
    session: Session, model: type[_Key], *, agency_id: str, key_id: str, actor: str
) -> _Key:
    key = session.get(model, key_id)
    if key is None or key.agency_id != agency_id:
        raise KeyNotFound(t("agency.key_not_found", agency=agency_id, key=key_id))
    if key.revoked_at is not None:
        raise Conflict(t("agency.key_already_revoked", key=key_id))
    key.revoked_at = utcnow()
    session.add(key)
    session.flush()
    audit.record(
        session,
        action=_REVOKED_ACTION[model],
        subject=_subject(agency_id),
        actor=actor,
        details={"key_id": key_id},
    )
    return key


@dataclass(frozen=True)
class _KeyOnFile:
    """What authenticating needs of an API key and its agency, kept per process while the
    directory's version stands still (exchange.directory)."""

    secret_hash: str
    revoked: bool
    expires_at: datetime | None
    agency_id: str
    agency_active: bool
    operator: bool
    scopes: frozenset[Scope]


# Keys known to this process; more than this many are read each time.
KEPT_KEYS = 10_000
_kept_keys: Kept[str, _KeyOnFile] = Kept(limit=KEPT_KEYS)


def _key_on_file(session: Session, key_id: str) -> _KeyOnFile | None:
    # As the database has them, whatever the session's identity map held.
    key = session.get(ApiKey, key_id, populate_existing=True)
    if key is None:
        return None
    agency = session.get(Agency, key.agency_id, populate_existing=True)
    assert agency is not None  # a key's agency is a foreign key
    return _KeyOnFile(
        secret_hash=key.secret_hash,
        revoked=key.revoked_at is not None,
        expires_at=key.expires_at,
        agency_id=agency.id,
        agency_active=agency.active,
        operator=agency.kind == AgencyKind.operator,
        scopes=key.scope_set,
    )


def authenticate(session: Session, *, token: str, directory_version: int | None) -> Principal:
    """The principal behind a bearer token, or :class:`AuthenticationFailed`. The key is
    read from ``session`` once per ``directory_version`` (None: read it now), which the
    caller reads afresh for each request, so a revocation anywhere counts from the next."""
    parsed = _parse_token(token)
    if parsed is None:
        raise AuthenticationFailed(t("auth.invalid"))
    key_id, secret = parsed
    key = _kept_keys.at(session, directory_version, key_id, lambda: _key_on_file(session, key_id))
    presented = _hash_secret(secret)
    # Compare against something even when the id is unknown. (The time taken may still
    # tell whether a key id was used lately, being kept: ids are public, the secret is
    # what counts.)
    stored = key.secret_hash if key is not None else _hash_secret(key_id)
    if not hmac.compare_digest(presented, stored) or key is None:
        raise AuthenticationFailed(t("auth.invalid"))
    if key.revoked:
        raise AuthenticationFailed(t("auth.revoked"))
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise AuthenticationFailed(t("auth.expired"))
    if not key.agency_active:
        raise PermissionDenied(t("auth.agency_inactive", agency=key.agency_id))
    return Principal(
        agency_id=key.agency_id,
        key_id=key_id,
        scopes=key.scopes,
        operator=key.operator,
        expires_at=key.expires_at,
    )


_kept_agencies: Kept[str, Agency] = Kept(limit=KEPT_KEYS)


def kept_agency(session: Session, agency_id: str) -> Agency:
    """The agency as of the session's directory version, for reading only: the instance is
    this process's copy, shared by its threads and attached to no session; change an
    agency through :func:`get_agency`."""

    def load() -> Agency:
        # As the database has it, whatever the session's identity map held.
        agency = session.get(Agency, agency_id, populate_existing=True)
        if agency is None:
            raise AgencyNotFound(t("agency.not_found", agency=agency_id))
        return Agency(**{name: getattr(agency, name) for name in Agency.model_fields})

    agency = _kept_agencies.get(session, agency_id, load)
    assert agency is not None  # load() raises rather than answer None
    return agency


# --- signing keys ---------------------------------------------------------------------------


def _load_ed25519(text: str) -> Ed25519PublicKey:
    def invalid(reason: str) -> InvalidInput:
        return InvalidInput.at(t("agency.signing_key_invalid", reason=reason), "/public_key")

    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(text.encode("ascii"))
        except ValueError:
            raise invalid("the PEM does not parse") from None
        if not isinstance(key, Ed25519PublicKey):
            raise invalid("the PEM holds another kind of key")
        return key
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise invalid("not base64") from None
    if len(raw) != 32:
        raise invalid(f"{len(raw)} bytes where 32 are expected")
    return Ed25519PublicKey.from_public_bytes(raw)


def add_signing_key(
    session: Session, *, agency_id: str, public_key: str, label: str = "", actor: str
) -> SigningKey:
    """Register a public key. Where the agency requires it, the key verifies nothing until
    a second admin key approves it (:func:`approve_signing_key`)."""
    agency = get_agency(session, agency_id)
    raw = raw_public_bytes(_load_ed25519(public_key))
    key_id = jwk_thumbprint(raw)
    existing = session.get(SigningKey, key_id)
    if existing is not None:
        raise Conflict(t("agency.signing_key_exists", key=key_id))
    pending = agency.require_signing_key_approval
    key = SigningKey(
        id=key_id,
        agency_id=agency_id,
        public_key=b64url(raw),
        label=label,
        added_by=actor,
        approved_at=None if pending else utcnow(),
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        action="signing_key.added",
        subject=_subject(agency_id),
        actor=actor,
        details={"key_id": key_id, "public_key": key.public_key, "awaiting_approval": pending},
    )
    return key


def approve_signing_key(
    session: Session, *, agency_id: str, key_id: str, approver: Principal
) -> SigningKey:
    """The second admin's approval of a signing key: by another API key than the one that
    registered it."""
    key = session.get(SigningKey, key_id)
    if key is None or key.agency_id != agency_id:
        raise KeyNotFound(t("agency.key_not_found", agency=agency_id, key=key_id))
    if key.revoked_at is not None or key.approved_at is not None:
        raise Conflict(t("agency.signing_key_not_pending", key=key_id))
    if key.added_by == approver.actor:
        raise PermissionDenied(t("agency.signing_key_same_admin"))
    key.approved_at = utcnow()
    key.approved_by = approver.actor
    session.add(key)
    session.flush()
    audit.record(
        session,
        action="signing_key.approved",
        subject=_subject(agency_id),
        actor=approver.actor,
        details={"key_id": key_id, "added_by": key.added_by},
    )
    return key


def list_signing_keys(session: Session, *, agency_id: str) -> list[SigningKey]:
    get_agency(session, agency_id)
    query = (
        select(SigningKey)
        .where(SigningKey.agency_id == agency_id)
        .order_by(col(SigningKey.created_at))
    )
    return list(session.exec(query))


def revoke_signing_key(session: Session, *, agency_id: str, key_id: str, actor: str) -> SigningKey:
    return _revoke(session, SigningKey, agency_id=agency_id, key_id=key_id, actor=actor)
