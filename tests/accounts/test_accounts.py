"""Named officers: passwords hashed with argon2id, refusals that tell nothing, lockout after
repeated failures, TOTP codes good once, reset links good once, sessions that end on time,
on logout and when the user is disabled."""

from __future__ import annotations

import json
from datetime import timedelta

import pyotp
import pytest
from sqlmodel import col, select

from exchange.accounts import service as accounts
from exchange.accounts.models import Role, User
from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope, Sensitivity
from exchange.audit.models import AuditEvent
from exchange.hub import Hub
from exchange.models import utcnow
from exchange.protection.sealing import Sealer
from tests.conftest import issue_key

TIMEOUTS = accounts.Timeouts(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def new_user(hub: Hub, username: str = "siti.polda", roles: set[Role] | None = None) -> str:
    issue_key(
        hub, "polda-banten", [Scope.receive], kind=AgencyKind.police, clearance=set(Sensitivity)
    )
    with hub.session() as session:
        agency = agencies.get_agency(session, "polda-banten")
        _, password = accounts.create_user(
            session,
            agency=agency,
            username=username,
            display_name="Siti",
            roles=frozenset(roles or {Role.receiver}),
            actor="test",
        )
    return password


def events(hub: Hub, action: str) -> list[dict]:  # type: ignore[type-arg]
    with hub.session() as session:
        rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
    found = [json.loads(e.canonical) for e in rows]
    return [e for e in found if e["action"] == action]


def sign_in(hub: Hub, username: str, password: str) -> User | Exception:
    try:
        with hub.session() as session:
            return accounts.authenticate(
                session, username=username, password=password, now=utcnow()
            )
    except accounts.LoginRefused as refused:
        return refused


def test_passwords_are_argon2id_and_refusals_read_the_same(hub: Hub) -> None:
    password = new_user(hub)
    with hub.session() as session:
        stored = accounts.get_user(session, "siti.polda").password_hash
    assert stored.startswith("$argon2id$")
    assert password not in stored
    assert isinstance(sign_in(hub, "Siti.Polda", password), User)
    assert sign_in(hub, "siti.polda", "nope") is None
    assert sign_in(hub, "nobody", "nope") is None
    assert [e["details"]["reason"] for e in events(hub, "user.login_refused")] == [
        "password",
        "unknown_user",
    ]


def test_five_failures_lock_the_account_for_a_while(hub: Hub) -> None:
    password = new_user(hub)
    for _ in range(accounts.LOCK_AFTER_FAILURES):
        assert sign_in(hub, "siti.polda", "wrong password") is None
    # Locked: even the right password is refused, the same way.
    assert sign_in(hub, "siti.polda", password) is None
    reasons = [e["details"]["reason"] for e in events(hub, "user.login_refused")]
    assert reasons[-2:] == ["locked_now", "locked"]
    with hub.session() as session:
        user = accounts.get_user(session, "siti.polda")
        user.locked_until = utcnow() - timedelta(seconds=1)  # as if the lock had passed
        session.add(user)
    assert isinstance(sign_in(hub, "siti.polda", password), User)


def test_a_second_factor_is_required_where_identifying_data_can_be_read(hub: Hub) -> None:
    new_user(hub)
    issue_key(hub, "disnakertrans-banten", [Scope.receive], kind=AgencyKind.manpower)
    with hub.session() as session:
        police = agencies.get_agency(session, "polda-banten")
        manpower = agencies.get_agency(session, "disnakertrans-banten")
        user = accounts.get_user(session, "siti.polda")
        assert accounts.needs_second_factor(user, police)
        clerk, _ = accounts.create_user(
            session,
            agency=manpower,
            username="budi.disnaker",
            display_name="Budi",
            roles=frozenset({Role.receiver}),
            actor="test",
        )
        assert not accounts.needs_second_factor(clerk, manpower)
        clerk.roles = "agency-admin receiver"
        assert accounts.needs_second_factor(clerk, manpower)  # every administrator


def test_a_totp_code_is_good_once(hub: Hub) -> None:
    new_user(hub)
    sealer: Sealer = hub.keyring.sealer
    now = utcnow()
    with hub.session() as session:
        user = accounts.get_user(session, "siti.polda")
        uri = accounts.enrol_totp(session, user=user, sealer=sealer)
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    code = totp.at(now)
    with hub.session() as session:
        user = accounts.get_user(session, "siti.polda")
        assert user.totp_sealed is not None
        assert totp.secret.encode() not in user.totp_sealed
        assert not accounts.check_totp(
            session,
            user=user,
            code="000000" if code != "000000" else "111111",
            sealer=sealer,
            now=now,
        )
        assert accounts.check_totp(session, user=user, code=code, sealer=sealer, now=now)
        assert user.totp_confirmed_at is not None
        assert not accounts.check_totp(session, user=user, code=code, sealer=sealer, now=now)


def test_sessions_end_when_idle_too_old_logged_out_or_the_user_disabled(hub: Hub) -> None:
    new_user(hub)
    now = utcnow()
    with hub.session() as session:
        user = accounts.get_user(session, "siti.polda")
        tokens = [accounts.start_session(session, user=user, now=now)[0] for _ in range(3)]
        assert len({tokens[0], tokens[1]}) == 2  # a fresh id every time

    def alive(token: str, at: object) -> bool:
        try:
            with hub.session() as session:
                accounts.current_session(session, token=token, now=at, timeouts=TIMEOUTS)  # type: ignore[arg-type]
        except accounts.SessionEnded:
            return False
        return True

    assert alive(tokens[0], now + timedelta(minutes=29))
    assert not alive(tokens[0], now + timedelta(minutes=29) + timedelta(minutes=31))  # idle
    # Kept busy, a session still ends at the absolute limit.
    moment = now
    while moment < now + timedelta(hours=11, minutes=45):
        moment += timedelta(minutes=20)
        assert alive(tokens[1], moment)
    assert not alive(tokens[1], now + timedelta(hours=12, minutes=1))
    with hub.session() as session:
        user = accounts.get_user(session, "siti.polda")
        accounts.disable_user(session, user=user, actor="test", now=utcnow())
    assert not alive(tokens[2], now + timedelta(minutes=1))
    assert sign_in(hub, "siti.polda", "whatever") is None


def test_a_reset_link_sets_a_password_once(hub: Hub) -> None:
    new_user(hub)
    with hub.session() as session:
        user = accounts.get_user(session, "siti.polda")
        token = accounts.issue_reset(session, user=user, actor="test", now=utcnow())
    with hub.session() as session, pytest.raises(Exception, match="at least"):
        accounts.redeem_reset(session, token=token, password="short", now=utcnow())
    with hub.session() as session:
        accounts.redeem_reset(session, token=token, password="a long new passphrase", now=utcnow())
    assert isinstance(sign_in(hub, "siti.polda", "a long new passphrase"), User)
    with hub.session() as session, pytest.raises(accounts.LoginRefused):
        accounts.redeem_reset(
            session, token=token, password="another long passphrase", now=utcnow()
        )
