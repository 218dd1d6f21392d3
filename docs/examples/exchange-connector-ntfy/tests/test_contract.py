"""The hub's contract kit, run against a topic server on loopback."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from exchange_connector_ntfy import NtfyConnector

from connectors.base import ConnectorContext
from connectors.testing import ConnectorContract


class Topic:
    """A minimal ntfy-style server: keeps each notice's envelope id; topic 'down' fails."""

    def __init__(self) -> None:
        self.envelope_ids: list[str] = []
        topic = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path.endswith("/down"):
                    self.send_response(503)
                else:
                    topic.envelope_ids.append(self.headers["X-Exchange-Envelope"])
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


class TestNtfyConnector(ConnectorContract):
    connector_class = NtfyConnector
    topics: dict[Path, Topic]

    @pytest.fixture(autouse=True)
    def _topics(self) -> Iterator[None]:
        self.topics = {}
        yield
        for topic in self.topics.values():
            topic.server.shutdown()

    def topic(self, tmp_path: Path) -> Topic:
        return self.topics.setdefault(tmp_path, Topic())

    def context(self, tmp_path: Path) -> ConnectorContext:
        return ConnectorContext(
            signing_key=Ed25519PrivateKey.generate(),
            signing_key_id="test",
            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        )

    def valid_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"url": f"{self.topic(tmp_path).base}/tppo-banten"}

    def received_ids(self, tmp_path: Path, config: dict[str, Any]) -> list[str]:
        return self.topic(tmp_path).envelope_ids

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"url": f"{self.topic(tmp_path).base}/down"}

    def invalid_configs(self) -> list[dict[str, Any]]:
        return [{}, {"url": "nope"}, {"url": "https://ntfy.example/x", "colour": "red"}]
