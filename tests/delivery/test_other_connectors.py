"""Filedrop and email through the whole hub: what lands on disk is signed and complete;
what goes by mail names the report but never the people in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from exchange.crypto import b64url_decode
from exchange.hub import Hub
from exchange.settings import Settings
from tests.connectors.test_builtin_contracts import Mailbox
from tests.delivery.conftest import WARNING, fast_settings, submit, subscribe
from tests.servers import free_port, wait_until


@pytest.fixture
def mail_server() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, mail_server: tuple[Controller, Mailbox]
) -> Settings:
    return fast_settings(
        database_url,
        tmp_path,
        smtp_url=f"smtp://127.0.0.1:{mail_server[0].port}",
        public_url="https://exchange.banten.example",
    )


def test_email_notices_carry_no_personal_data(
    client: TestClient,
    village: dict[str, str],
    polda: dict[str, str],
    mail_server: tuple[Controller, Mailbox],
) -> None:
    _, mailbox = mail_server
    subscribe(client, polda, connector="email", config={"to": ["piket@polda-banten.example"]})
    report_id = submit(client, village)
    wait_until(lambda: len(mailbox.messages) == 1, what="the notice", deadline_s=20)
    message = message_from_bytes(mailbox.messages[0])
    text = mailbox.messages[0].decode()
    assert "village-early-warning" in message["Subject"]
    assert "36.03.11.2009" in text
    assert "https://exchange.banten.example/v1/inbox" in text
    assert report_id not in text  # the report's id is only in the inbox
    person = WARNING["persons_at_risk"]["people"][0]
    for personal in (person["name"], person["nik"], person["phone"], WARNING["narrative"][:30]):
        assert personal not in text


def test_filedrop_writes_signed_envelopes(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    settings: Settings,
) -> None:
    subscribe(client, polda, connector="filedrop", config={"directory": "in"})
    report_id = submit(client, village)
    folder = settings.filedrop_root / "polda-banten" / "in"  # type: ignore[operator]
    wait_until(lambda: len(list(folder.glob("*.json"))) == 1, what="the file", deadline_s=20)
    (path,) = folder.glob("*.json")
    envelope = json.loads(path.read_bytes())
    assert envelope["subject"] == report_id
    assert envelope["recipient"] == "polda-banten"
    assert envelope["data"] == WARNING
    signature = json.loads((folder / f"{path.name}.sig").read_text())
    hub.keyring.envelope_key.public_key().verify(b64url_decode(signature["sig"]), path.read_bytes())
    assert stat_mode(path) & 0o007 == 0  # not world-readable


def stat_mode(path: Path) -> int:
    return path.stat().st_mode


def test_filedrop_needs_an_operator_root(
    client: TestClient, hub: Hub, polda: dict[str, str]
) -> None:
    hub.settings = hub.settings.model_copy(update={"filedrop_root": None})
    response = client.post(
        "/v1/subscriptions",
        json={"connector": "filedrop", "config": {"directory": "x"}},
        headers=polda,
    )
    assert response.status_code == 422
    assert "EXCHANGE_FILEDROP_ROOT" in response.json()["error"]["message"]
