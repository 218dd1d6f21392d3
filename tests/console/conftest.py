"""Console fixtures: the demo agencies with their subscriptions, and users signed in
through the pages as a browser would (password, own password, TOTP)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from exchange.accounts import service as accounts
from exchange.accounts.models import Role
from exchange.agencies import service as agencies
from exchange.audit.models import AuditEvent
from exchange.audit.service import integrate, latest_checkpoint
from exchange.cli import _register
from exchange.delivery.models import Delivery, DeliveryState
from exchange.demo import BANTEN, OPERATOR
from exchange.hub import Hub
from exchange.settings import Settings
from tests.conftest import bearer
from tests.delivery.conftest import fast_settings
from tests.servers import wait_until

NEW_PASSWORD = "a long passphrase of my own"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return fast_settings(database_url, tmp_path)


@dataclass
class Officer:
    username: str
    password: str
    agency: str
    totp: pyotp.TOTP | None = None


@pytest.fixture
def demo(hub: Hub) -> dict[str, dict[str, str]]:
    """The demo agencies (with their subscriptions), and a bearer header for each."""
    with hub.session() as session:
        registered = [_register(session, hub, d) for d in (OPERATOR, *BANTEN)]
    return {a["id"]: bearer(a["api_key"]["token"]) for a in registered}


def add_user(hub: Hub, agency: str, username: str, *roles: Role) -> Officer:
    with hub.session() as session:
        _, password = accounts.create_user(
            session,
            agency=agencies.get_agency(session, agency),
            username=username,
            display_name=username.title(),
            roles=frozenset(roles),
            actor="test",
        )
    return Officer(username, password, agency)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def post_password(client: TestClient, officer: Officer, **options: Any) -> Any:
    """The sign-in form, filled with the officer's username and password, sent."""
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={
            "csrf": csrf_of(form.text),
            "username": officer.username,
            "password": officer.password,
        },
        **options,
    )


def sign_in(client: TestClient, officer: Officer) -> None:
    """Through the pages: the one-time password, one's own, then the authenticator."""
    answer = post_password(client, officer)
    assert answer.status_code == 200, answer.text  # followed the redirects
    if "/console/password" in str(answer.url):
        officer.password = NEW_PASSWORD
        answer = client.post(
            "/console/password", data={"csrf": csrf_of(answer.text), "password": NEW_PASSWORD}
        )
    if "/console/totp" in str(answer.url):
        uri = re.search(r'<code id="totp-uri">([^<]+)</code>', answer.text)
        if uri:
            parsed: Any = pyotp.parse_uri(uri.group(1).replace("&amp;", "&"))
            officer.totp = parsed
        assert officer.totp is not None
        answer = client.post(
            "/console/totp", data={"csrf": csrf_of(answer.text), "code": officer.totp.now()}
        )
    assert answer.status_code == 200, answer.text
    assert "/console/login" not in str(answer.url)


def state_of(hub: Hub, delivery_id: str) -> DeliveryState:
    with hub.session() as session:
        found = session.get(Delivery, delivery_id)
    assert found is not None
    return found.state


def integrated(hub: Hub) -> int:
    """Integrate until every recorded event is under a signed checkpoint (the in-process
    worker integrates too); that checkpoint's size."""
    sizes: list[int] = []

    def caught_up() -> bool:
        with hub.session() as session:
            integrate(session, keyring=hub.keyring)
        with hub.session() as session:
            total = session.exec(select(func.count()).select_from(AuditEvent)).one()
            latest = latest_checkpoint(session)
        sizes.append(latest.size if latest else 0)
        return sizes[-1] == total

    wait_until(caught_up, what="the log integrated", deadline_s=30)
    return sizes[-1]
