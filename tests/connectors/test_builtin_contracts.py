"""The built-in connectors pass the same contract kit integrators use
(``connectors/testing.py``), each against a real destination: a directory, an HTTP server
on loopback, an SMTP server on loopback."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.base import ConnectorContext, PermanentFailure
from connectors.email import EmailConnector
from connectors.filedrop import FiledropConfig, FiledropConnector
from connectors.testing import CONTRACT_RECIPIENT, ConnectorContract, sample_envelope
from connectors.webhook import WebhookConnector
from exchange.crypto import b64url_decode
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import free_port

SIGNING_KEY = Ed25519PrivateKey.generate()


class TestFiledrop(ConnectorContract):
    connector_class = FiledropConnector

    def context(self, tmp_path: Path) -> ConnectorContext:
        return ConnectorContext(
            signing_key=SIGNING_KEY,
            signing_key_id="k1",
            filedrop_root=tmp_path / "root",
            recipient=CONTRACT_RECIPIENT,
        )

    def valid_config(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "root").mkdir(parents=True, exist_ok=True)
        return {"directory": "inbound"}

    def received_ids(self, tmp_path: Path, config: dict[str, Any]) -> list[str]:
        folder = tmp_path / "root" / CONTRACT_RECIPIENT / config["directory"]
        ids = []
        for path in sorted(folder.glob("*.json")):
            signature = json.loads((folder / f"{path.name}.sig").read_text())
            SIGNING_KEY.public_key().verify(b64url_decode(signature["sig"]), path.read_bytes())
            ids.append(json.loads(path.read_bytes())["id"])
        assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"
        return ids

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "root" / CONTRACT_RECIPIENT).mkdir(parents=True, exist_ok=True)
        (tmp_path / "root" / CONTRACT_RECIPIENT / "blocked").write_text("not a folder")
        return {"directory": "blocked/inbound"}

    def invalid_configs(self) -> list[dict[str, Any]]:
        return [{"directory": "/etc"}, {"directory": "../up"}, {"directory": ""}, {}]


def _drop(tmp_path: Path) -> tuple[FiledropConnector, Path]:
    """A filedrop connector for polda-banten, and its agency's folder (made by the hub)."""
    folder = tmp_path / "root" / CONTRACT_RECIPIENT
    folder.mkdir(parents=True)
    return FiledropConnector(TestFiledrop().context(tmp_path)), folder


def test_filedrop_never_writes_through_a_link_in_the_drop_path(tmp_path: Path) -> None:
    connector, folder = _drop(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "escape").symlink_to(outside)
    with pytest.raises(PermanentFailure):
        connector.deliver(sample_envelope(), FiledropConfig(directory="escape/x"))
    assert list(outside.iterdir()) == []


def test_filedrop_never_writes_through_a_planted_file_link(tmp_path: Path) -> None:
    """The recipient plants links at the envelope's name and at every temporary name it
    could guess: the hub's key file stays untouched and the envelope lands in the folder."""
    connector, folder = _drop(tmp_path)
    (folder / "inbound").mkdir()
    precious = tmp_path / "hub-signing.key"
    precious.write_bytes(b"the hub's private key")
    envelope = sample_envelope()
    for name in (
        f"{envelope.id}.json",
        f"{envelope.id}.json.sig",
        f".{envelope.id}.json.{os.getpid()}.tmp",  # the old, predictable temporary name
        f".{envelope.id}.json.sig.{os.getpid()}.tmp",
    ):
        (folder / "inbound" / name).symlink_to(precious)
    connector.deliver(envelope, FiledropConfig(directory="inbound"))
    assert precious.read_bytes() == b"the hub's private key"
    written = folder / "inbound" / f"{envelope.id}.json"
    assert not written.is_symlink()
    assert json.loads(written.read_bytes())["id"] == envelope.id


def test_filedrop_keeps_agencies_apart(tmp_path: Path) -> None:
    """A directory is always inside the recipient's own folder: naming another agency's
    folder makes a subfolder of one's own."""
    connector, folder = _drop(tmp_path)
    envelope = sample_envelope()
    connector.deliver(envelope, FiledropConfig(directory="dinsos-banten/inbound"))
    assert (folder / "dinsos-banten" / "inbound" / f"{envelope.id}.json").exists()
    assert not (tmp_path / "root" / "dinsos-banten").exists()


class TestWebhook(ConnectorContract):
    connector_class = WebhookConnector
    receivers: dict[Path, Receiver]

    @pytest.fixture(autouse=True)
    def _servers(self) -> Iterator[None]:
        self.receivers = {}
        self._running: list[Any] = []
        yield
        for context in self._running:
            context.__exit__(None, None, None)

    def context(self, tmp_path: Path) -> ConnectorContext:
        return ConnectorContext(
            signing_key=SIGNING_KEY,
            signing_key_id="k1",
            timeout_s=2,
            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        )

    def valid_config(self, tmp_path: Path) -> dict[str, Any]:
        if tmp_path not in self.receivers:
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            context = running_receiver(Receiver(secret=secret))
            self.receivers[tmp_path] = context.__enter__()
            self._running.append(context)
        receiver = self.receivers[tmp_path]
        return {"url": receiver.url, "secret": receiver.secret}

    def received_ids(self, tmp_path: Path, config: dict[str, Any]) -> list[str]:
        return self.receivers[tmp_path].accepted_ids()

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"url": f"http://127.0.0.1:{free_port()}/closed"}

    def invalid_configs(self) -> list[dict[str, Any]]:
        return [{}, {"url": "not a url"}, {"url": "https://a.example", "secret": "plain"}]


class Mailbox:
    """An aiosmtpd handler that keeps what it is sent and refuses one domain."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if address.endswith("@refused.example"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 Message accepted"


class TestEmail(ConnectorContract):
    connector_class = EmailConnector
    servers: dict[Path, tuple[Controller, Mailbox]]

    @pytest.fixture(autouse=True)
    def _servers(self) -> Iterator[None]:
        self.servers = {}
        yield
        for controller, _ in self.servers.values():
            controller.stop()

    def _server(self, tmp_path: Path) -> tuple[Controller, Mailbox]:
        if tmp_path not in self.servers:
            mailbox = Mailbox()
            controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
            controller.start()
            self.servers[tmp_path] = (controller, mailbox)
        return self.servers[tmp_path]

    def context(self, tmp_path: Path) -> ConnectorContext:
        controller, _ = self._server(tmp_path)
        return ConnectorContext(
            signing_key=SIGNING_KEY,
            signing_key_id="k1",
            timeout_s=5,
            smtp_url=f"smtp://127.0.0.1:{controller.port}",
            public_url="https://exchange.example",
        )

    def valid_config(self, tmp_path: Path) -> dict[str, Any]:
        self._server(tmp_path)
        return {"to": ["piket@polda-banten.example"]}

    def received_ids(self, tmp_path: Path, config: dict[str, Any]) -> list[str]:
        _, mailbox = self._server(tmp_path)
        ids = []
        for raw in mailbox.messages:
            message = message_from_bytes(raw)
            assert message["To"] == ", ".join(config["to"])
            assert "https://exchange.example/v1/inbox" in message.get_payload()
            ids.append(message["Message-ID"].strip("<>").split("@")[0])
        return ids

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        self._server(tmp_path)
        return {"to": ["nobody@refused.example"]}

    def invalid_configs(self) -> list[dict[str, Any]]:
        return [{}, {"to": []}, {"to": ["not an address"]}]


def test_the_contract_kit_imports_without_pytest() -> None:
    """It ships in the hub's wheel, where pytest is not installed."""
    code = "import sys; sys.modules['pytest'] = None; import connectors.testing"
    subprocess.run([sys.executable, "-c", code], check=True)
