"""Users, passwords, the second factor and console sessions. Functions take the session
first and never commit.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile); a TOTP second factor (RFC 6238, pyotp) is required of every user who can read
identifying or special fields and of every administrator. Failed logins are counted and
lock the account for a while; every refusal reads the same, whether the user exists or not.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from exchange.accounts.models import ROLE_SCOPES, ConsoleSession, Role, User
from exchange.agencies.models import Agency, AgencyKind, Sensitivity
from exchange.agencies.service import Principal
from exchange.audit import service as audit
from exchange.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from exchange.i18n import t
from exchange.protection.sealing import Sealer
from exchange.registry.formats import e164

HASHER = PasswordHasher()
# Verified when the username is unknown, so that a refusal takes as long either way.
_UNKNOWN_USER_HASH = HASHER.hash(secrets.token_urlsafe(16))
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
LOCK_AFTER_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
RESET_LINK_LIFETIME = timedelta(hours=24)
TOTP_ISSUER = "Exchange hub"
SECOND_FACTOR_CLEARANCE = frozenset({Sensitivity.identifying, Sensitivity.special})


class LoginRefused(AuthenticationFailed):
    """Raised for any failed sign-in: unknown user, wrong password or code, locked or
    disabled account. One message for all, so that a refusal tells nothing."""

    code = "login_refused"


class SessionEnded(AuthenticationFailed):
    """Raised when a console session is unknown, ended, idle too long or too old."""

    code = "session_ended"


class UserNotFound(NotFound):
    code = "user_not_found"


class UsernameTaken(Conflict):
    code = "username_taken"


def token_digest(token: str) -> str:
    """What is stored of a token the browser or the user holds: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def _totp_purpose(user_id: str) -> str:
    return f"totp:{user_id}"


def one_time_password() -> str:
    """A password to hand over once; the user must choose another at first sign-in."""
    return secrets.token_urlsafe(12)


# --- users ----------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    agency: Agency,
    username: str,
    display_name: str,
    roles: frozenset[Role],
    actor: str,
    phone: str | None = None,
) -> tuple[User, str]:
    """A new user of ``agency`` and the one-time password to hand it (shown only now).
    ``phone`` is the number a text-message intake knows the user by."""
    username = username.strip().lower()
    number = checked_phone(phone)
    if not USERNAME.match(username):
        raise InvalidInput.at(t("user.bad_username"), "/username")
    if not roles:
        raise InvalidInput.at(t("user.no_role"), "/roles")
    if Role.hub_admin in roles and agency.kind != AgencyKind.operator:
        raise InvalidInput.at(t("user.hub_admin_only_operator"), "/roles")
    if session.exec(select(User.id).where(User.username == username)).first() is not None:
        raise UsernameTaken(t("user.taken", username=username))
    if number and session.exec(select(User.id).where(User.phone == number)).first() is not None:
        raise UsernameTaken(t("user.phone_taken"))
    password = one_time_password()
    user = User(
        id=uuid.uuid4().hex,
        agency_id=agency.id,
        username=username,
        display_name=display_name,
        roles=" ".join(sorted(roles)),
        password_hash=HASHER.hash(password),
        phone=number,
    )
    session.add(user)
    audit.record(
        session,
        action="user.created",
        subject=f"user:{user.id}",
        actor=actor,
        details={"agency": agency.id, "username": username, "roles": sorted(roles)},
    )
    return user, password


def principal_of(user: User, agency: Agency) -> Principal:
    """The principal a user acts as: its agency, its roles' scopes, its own id (the audit
    log names the person). Only the hub-admin role acts for the operator over every agency:
    an agency admin of the operator agency administers that agency alone."""
    return Principal(
        agency_id=agency.id,
        key_id=f"user-{user.id}",
        scopes=frozenset(ROLE_SCOPES[role] for role in user.role_set),
        operator=agency.kind == AgencyKind.operator and Role.hub_admin in user.role_set,
        user_id=user.id,
    )


def checked_phone(phone: str | None) -> str | None:
    """A user's phone number in E.164 form, or None; one that cannot be a number is refused."""
    if not phone or not phone.strip():
        return None
    number = e164(phone)
    if number is None:
        raise InvalidInput.at(t("user.bad_phone"), "/phone")
    return number


def set_phone(session: Session, *, user: User, phone: str | None, actor: str) -> None:
    """Give the user a new number for text-message reports, or none (a lost or recycled
    number must stop speaking for the officer at once)."""
    number = checked_phone(phone)
    if (
        number
        and session.exec(select(User.id).where(User.phone == number, User.id != user.id)).first()
    ):
        raise UsernameTaken(t("user.phone_taken"))
    user.phone = number
    session.add(user)
    audit.record(
        session,
        action="user.phone_changed",
        subject=f"user:{user.id}",
        actor=actor,
        details={"has_phone": number is not None},
    )


def user_by_phone(session: Session, phone: str) -> User | None:
    """The user a text message comes from: by its number, however the channel wrote it."""
    number = e164(phone)
    if number is None:
        return None
    return session.exec(select(User).where(User.phone == number)).first()


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise UserNotFound(t("user.not_found", username=username))
    return user


def list_users(session: Session, *, agency_id: str | None) -> list[User]:
    query = select(User).order_by(col(User.agency_id), col(User.username))
    if agency_id is not None:
        query = query.where(User.agency_id == agency_id)
    return list(session.exec(query))


def needs_second_factor(user: User, agency: Agency) -> bool:
    """TOTP is required of administrators and of anyone whose agency may read identifying or
    special fields."""
    admin = bool({Role.agency_admin, Role.hub_admin} & user.role_set)
    return admin or bool(SECOND_FACTOR_CLEARANCE & agency.clearance_set)


def disable_user(session: Session, *, user: User, actor: str, now: datetime) -> int:
    """Stop a user at once: every session of it ends. Returns how many ended."""
    user.disabled_at = now
    session.add(user)
    ended = end_sessions(session, user_id=user.id, now=now)
    audit.record(
        session,
        action="user.disabled",
        subject=f"user:{user.id}",
        actor=actor,
        details={"ended_sessions": ended},
    )
    return ended


# --- passwords ------------------------------------------------------------------------------


def authenticate(session: Session, *, username: str, password: str, now: datetime) -> User | None:
    """The user whose password this is, or None. A refusal is counted and audited, and
    must be committed although the sign-in fails: the caller commits, then raises
    :class:`LoginRefused`. The fifth failure in a row locks the account for
    :data:`LOCK_FOR`."""
    user = session.exec(select(User).where(User.username == username.strip().lower())).first()
    # The hash is checked on every path, so that no refusal answers faster than another.
    matches = _verify(user.password_hash if user else _UNKNOWN_USER_HASH, password)
    if user is None:
        _refused(session, subject="user:unknown", reason="unknown_user")
        return None
    agency = session.get(Agency, user.agency_id)
    if user.disabled_at is not None or agency is None or not agency.active:
        _refused(session, subject=f"user:{user.id}", reason="disabled")
        return None
    if user.locked_until is not None and user.locked_until > now:
        _refused(session, subject=f"user:{user.id}", reason="locked")
        return None
    if not matches:
        user.failed_logins += 1
        reason = "password"
        if user.failed_logins >= LOCK_AFTER_FAILURES:
            user.locked_until = now + LOCK_FOR
            user.failed_logins = 0
            reason = "locked_now"
        session.add(user)
        _refused(session, subject=f"user:{user.id}", reason=reason)
        return None
    user.failed_logins = 0
    user.locked_until = None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    session.add(user)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _refused(session: Session, *, subject: str, reason: str) -> None:
    audit.record(
        session,
        action="user.login_refused",
        subject=subject,
        actor="anonymous",
        details={"reason": reason},
    )


def set_password(
    session: Session,
    *,
    user: User,
    password: str,
    actor: str,
    now: datetime,
    keep: ConsoleSession | None = None,
) -> None:
    """A new password: every session of the user but ``keep`` (the one that set it) ends,
    and a lockout is lifted."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.at(t("user.short_password", length=MIN_PASSWORD_LENGTH), "/password")
    user.password_hash = HASHER.hash(password)
    user.password_must_change = False
    user.reset_token_hash = None
    user.reset_expires_at = None
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    end_sessions(session, user_id=user.id, now=now, keep=keep)
    audit.record(
        session, action="user.password_set", subject=f"user:{user.id}", actor=actor, details={}
    )


def issue_reset(session: Session, *, user: User, actor: str, now: datetime) -> str:
    """A one-time token for a password-reset link (valid 24 hours); every session of the
    user ends, since whoever asked for a reset no longer trusts the password."""
    token = secrets.token_urlsafe(32)
    user.reset_token_hash = token_digest(token)
    user.reset_expires_at = now + RESET_LINK_LIFETIME
    session.add(user)
    end_sessions(session, user_id=user.id, now=now)
    audit.record(
        session, action="user.reset_issued", subject=f"user:{user.id}", actor=actor, details={}
    )
    return token


def redeem_reset(session: Session, *, token: str, password: str, now: datetime) -> User:
    """Set a new password with a reset token, once."""
    user = session.exec(select(User).where(User.reset_token_hash == token_digest(token))).first()
    if (
        user is None
        or user.reset_expires_at is None
        or user.reset_expires_at < now
        or user.disabled_at is not None
    ):
        raise LoginRefused(t("user.reset_invalid"))
    set_password(session, user=user, password=password, actor=f"user:{user.id}", now=now)
    return user


# --- the second factor ----------------------------------------------------------------------


def enrol_totp(session: Session, *, user: User, sealer: Sealer) -> str:
    """A new TOTP secret for the user, as an ``otpauth://`` URI for an authenticator app;
    it counts once confirmed with a code."""
    if user.totp_sealed is None:  # a pending, unconfirmed secret is shown again, not replaced
        user.totp_sealed = sealer.seal(
            pyotp.random_base32().encode(), purpose=_totp_purpose(user.id)
        )
        user.totp_confirmed_at = None
        user.totp_last_step = None
        session.add(user)
    return pyotp.TOTP(_totp_secret(user, sealer)).provisioning_uri(
        name=user.username, issuer_name=TOTP_ISSUER
    )


def _totp_secret(user: User, sealer: Sealer) -> str:
    assert user.totp_sealed is not None
    return sealer.unseal(user.totp_sealed, purpose=_totp_purpose(user.id)).decode()


def check_totp(session: Session, *, user: User, code: str, sealer: Sealer, now: datetime) -> bool:
    """Whether ``code`` is the user's current code (or the one either side, for clock
    drift), and not one already used: a code seen once is refused after."""
    if user.totp_sealed is None or (user.locked_until is not None and user.locked_until > now):
        return False
    totp = pyotp.TOTP(_totp_secret(user, sealer))
    step = int(now.timestamp()) // totp.interval
    typed = code.strip().encode()
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.at(candidate * totp.interval).encode(), typed):
            if user.totp_last_step is not None and candidate <= user.totp_last_step:
                break  # a code already used: refused like a wrong one
            user.totp_last_step = candidate
            user.failed_logins = 0
            if user.totp_confirmed_at is None:
                user.totp_confirmed_at = now
                audit.record(
                    session,
                    action="user.totp_enrolled",
                    subject=f"user:{user.id}",
                    actor=f"agency:{user.agency_id}/user:{user.id}",
                    details={},
                )
            session.add(user)
            return True
    # Wrong codes count with wrong passwords: five in a row lock the account and end its
    # sessions, so a stolen password cannot grind through the million codes.
    user.failed_logins += 1
    reason = "totp"
    if user.failed_logins >= LOCK_AFTER_FAILURES:
        user.locked_until = now + LOCK_FOR
        user.failed_logins = 0
        end_sessions(session, user_id=user.id, now=now)
        reason = "locked_now"
    session.add(user)
    _refused(session, subject=f"user:{user.id}", reason=reason)
    return False


CONFIRMATION = timedelta(minutes=5)


def confirm(session: Session, *, record: ConsoleSession, now: datetime) -> None:
    """A code was just typed in this session: what needs a fresh second factor may be done
    for the next few minutes."""
    record.confirmed_until = now + CONFIRMATION
    session.add(record)


def confirmed(
    session: Session,
    *,
    record: ConsoleSession,
    user: User,
    code: str,
    sealer: Sealer,
    now: datetime,
) -> bool:
    """Whether the session may do something that needs a fresh second factor (issue a key,
    reset a password, subscribe a new destination): within a few minutes of the last code
    typed in it, or with ``code`` now. A stolen session cookie alone does not reach them."""
    if record.confirmed_until is not None and record.confirmed_until > now:
        return True
    if code and check_totp(session, user=user, code=code, sealer=sealer, now=now):
        confirm(session, record=record, now=now)
        return True
    return False


def reset_totp(session: Session, *, user: User, actor: str, now: datetime) -> None:
    """Forget the user's second factor: it enrols again at its next sign-in."""
    user.totp_sealed = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.add(user)
    end_sessions(session, user_id=user.id, now=now)
    audit.record(
        session, action="user.totp_reset", subject=f"user:{user.id}", actor=actor, details={}
    )


# --- sessions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta
    absolute: timedelta


def start_session(session: Session, *, user: User, now: datetime) -> tuple[str, ConsoleSession]:
    """A new session for a user who gave the right password: a fresh random id (never one
    the browser brought: no fixation), its CSRF token; the cookie gets the id."""
    token = secrets.token_urlsafe(32)
    record = ConsoleSession(
        id_hash=token_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    session.add(record)
    audit.record(
        session,
        action="user.logged_in",
        subject=f"user:{user.id}",
        actor=f"agency:{user.agency_id}/user:{user.id}",
        details={},
    )
    return token, record


def current_session(
    session: Session, *, token: str, now: datetime, timeouts: Timeouts, touch: bool = True
) -> tuple[ConsoleSession, User]:
    """The live session a cookie names, and its user; with ``touch`` (a person acted, not a
    page's script polling) the idle time restarts."""
    record = session.get(ConsoleSession, token_digest(token))
    user = session.get(User, record.user_id) if record is not None else None
    agency = session.get(Agency, user.agency_id) if user is not None else None
    if (
        record is None
        or user is None
        or agency is None
        or not agency.active
        or record.ended_at is not None
        or user.disabled_at is not None
        or (user.locked_until is not None and user.locked_until > now)
        or now - record.last_seen_at > timeouts.idle
        or now - record.created_at > timeouts.absolute
    ):
        raise SessionEnded(t("user.session_ended"))
    if touch:
        record.last_seen_at = now
        session.add(record)
    return record, user


def sign_out(session: Session, *, record: ConsoleSession, actor: str, now: datetime) -> None:
    """The user ends its session."""
    end_session(session, record=record, now=now)
    audit.record(
        session, action="user.logged_out", subject=f"user:{record.user_id}", actor=actor, details={}
    )


def end_session(session: Session, *, record: ConsoleSession, now: datetime) -> None:
    record.ended_at = now
    session.add(record)


def end_sessions(
    session: Session, *, user_id: str, now: datetime, keep: ConsoleSession | None = None
) -> int:
    """End every live session of a user (but ``keep``); returns how many."""
    live = session.exec(
        select(ConsoleSession).where(
            ConsoleSession.user_id == user_id, col(ConsoleSession.ended_at).is_(None)
        )
    ).all()
    ended = [record for record in live if keep is None or record.id_hash != keep.id_hash]
    for record in ended:
        end_session(session, record=record, now=now)
    return len(ended)
