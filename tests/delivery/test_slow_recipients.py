"""A recipient slow to answer holds no more than its share: a whole attempt has one deadline,
the audit log and the sweeper run on threads deliveries cannot take, and one agency's
attempts in flight are capped so other agencies' deliveries go on."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from connectors.base import ConnectorContext, RetryableFailure
from connectors.testing import sample_envelope
from connectors.webhook import WebhookConfig, WebhookConnector
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import deliveries, fast_settings, submit, subscribe
from tests.servers import wait_until

HANG_S = 20.0  # how long a slow recipient would hold an attempt without the fixes


@dataclass(frozen=True)
class SlowServer:
    url: str
    stop: threading.Event  # set it to let every connection go


@contextmanager
def slow_server(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[SlowServer]:
    """A loopback HTTP peer that lets ``answer`` misbehave on each connection until stopped."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def handle(connection: socket.socket) -> None:
        with connection:
            answer(connection, stop)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield SlowServer(f"http://127.0.0.1:{server.getsockname()[1]}/hook", stop)
    finally:
        stop.set()
        thread.join(5)
        server.close()


def dribble(connection: socket.socket, stop: threading.Event) -> None:
    """One byte of a status line every 0.2 s for 30 s: each read succeeds, so no per-read
    timeout ever fires."""
    for byte in b"HTTP/1.1 200 OK\r\n" * 10:
        if stop.wait(0.2):
            return
        try:
            connection.sendall(bytes([byte]))
        except OSError:
            return


def stay_silent(connection: socket.socket, stop: threading.Event) -> None:
    """Take the request and never answer."""
    stop.wait(HANG_S * 2)


def test_one_deadline_covers_the_whole_attempt() -> None:
    connector = WebhookConnector(sample_context(timeout_s=1.0))
    with slow_server(dribble) as server:
        config = WebhookConfig.model_validate({"url": server.url})
        started = time.monotonic()
        with pytest.raises(RetryableFailure, match="no answer within 1 s"):
            connector.deliver(sample_envelope(), config)
        assert time.monotonic() - started < 5  # the dribble alone would last 30 s


def sample_context(*, timeout_s: float) -> ConnectorContext:
    return ConnectorContext(
        signing_key=Ed25519PrivateKey.generate(),
        signing_key_id="k",
        timeout_s=timeout_s,
        allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )


@pytest.fixture
def hanging() -> Iterator[SlowServer]:
    with slow_server(stay_silent) as server:
        yield server


def slow_hub(database_url: str, tmp_path: Path, **overrides: object) -> TestClient:
    settings = fast_settings(
        database_url,
        tmp_path,
        delivery_timeout_s=HANG_S,
        worker_threads=4,
        audit_interval_s=0.1,
        **overrides,
    )
    return TestClient(create_app(settings))


def slowed_down(client: TestClient, hanging: SlowServer) -> Hub:
    """polda-banten with six webhook subscriptions to a receiver that never answers."""
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    slow = bearer(issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police))
    for _ in range(6):
        subscribe(client, slow, connector="webhook", config={"url": hanging.url})
    return hub


def village(hub: Hub) -> dict[str, str]:
    return bearer(issue_key(hub, "pimpasa-x", [Scope.submit], kind=AgencyKind.village))


def test_the_audit_log_advances_while_every_delivery_thread_waits(
    database_url: str, tmp_path: Path, hanging: SlowServer
) -> None:
    with slow_hub(
        database_url,
        tmp_path,
        delivery_max_in_flight_per_agency=100,
        delivery_max_in_flight_per_subscription=100,
    ) as client:
        hub = slowed_down(client, hanging)
        submit(client, village(hub))
        wait_until(
            lambda: len(deliveries(hub, state=DeliveryState.in_flight)) >= 4,
            what="every delivery thread held by the slow recipient",
            deadline_s=10,
        )
        with hub.session() as session:
            logged = session.exec(select(func.count()).select_from(AuditEvent)).one()
        wait_until(
            lambda: checkpoint_size(hub) >= logged,
            what="the audit log integrating what was recorded",
            deadline_s=HANG_S / 4,
        )
        hanging.stop.set()  # the held attempts end now, not at their deadline


def checkpoint_size(hub: Hub) -> int:
    with hub.session() as session:
        return audit.current_checkpoint(session).size


def test_one_slow_agency_does_not_hold_up_another(
    database_url: str, tmp_path: Path, hanging: SlowServer
) -> None:
    with slow_hub(
        database_url,
        tmp_path,
        delivery_max_in_flight_per_agency=2,
        delivery_max_in_flight_per_subscription=2,
    ) as client:
        hub = slowed_down(client, hanging)
        other = bearer(issue_key(hub, "dinsos-banten", [Scope.receive], kind=AgencyKind.social))
        subscribe(client, other)  # an inbox: delivered as soon as a thread takes it
        submit(client, village(hub))
        wait_until(
            lambda: (
                len(deliveries(hub, agency_id="dinsos-banten", state=DeliveryState.delivered)) == 1
            ),
            what="the other agency's inbox delivery",
            deadline_s=HANG_S / 4,
        )
        held = deliveries(hub, agency_id="polda-banten", state=DeliveryState.in_flight)
        assert len(held) <= 2
        hanging.stop.set()


def read_request(connection: socket.socket) -> bool:
    """Read one HTTP/1.1 request (headers and Content-Length body); False at end of stream."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return True


def counting(answer: Callable[[socket.socket, threading.Event], None]) -> tuple[list[int], Any]:
    """``answer`` with a count of the connections it was given."""
    opened: list[int] = []

    def counted(connection: socket.socket, stop: threading.Event) -> None:
        opened.append(1)
        answer(connection, stop)

    return opened, counted


def answer_each_request(connection: socket.socket, stop: threading.Event) -> None:
    """204 to every request on the connection, keeping it open."""
    while not stop.is_set() and read_request(connection):
        connection.sendall(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")


def test_every_attempt_has_a_connection_of_its_own() -> None:
    """Five deliveries to one receiver, five connections: nothing a receiver leaves on a
    connection (stray bytes after an answer) can be read as another delivery's answer."""
    opened, answer = counting(answer_each_request)
    connector = WebhookConnector(sample_context(timeout_s=5.0))
    with slow_server(answer) as server:
        config = WebhookConfig.model_validate({"url": server.url})
        statuses = [connector.deliver(sample_envelope(), config).status_code for _ in range(5)]
    assert statuses == [204] * 5
    assert len(opened) == 5


def answer_then_dribble_the_body(connection: socket.socket, stop: threading.Event) -> None:
    """200 at once, then a long body a byte at a time."""
    while not stop.is_set() and read_request(connection):
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        for _ in range(100):
            if stop.wait(0.1):
                return
            try:
                connection.sendall(b"x")
            except OSError:
                return


def test_a_body_dribbled_after_the_answer_does_not_hold_the_attempt() -> None:
    """The status and headers are the answer: a body that does not come is not waited for."""
    opened, answer = counting(answer_then_dribble_the_body)
    connector = WebhookConnector(sample_context(timeout_s=5.0))
    with slow_server(answer) as server:
        config = WebhookConfig.model_validate({"url": server.url})
        started = time.monotonic()
        delivered = connector.deliver(sample_envelope(), config)
        assert time.monotonic() - started < 2  # the body alone would take 10 s
    assert delivered.status_code == 200
    assert len(opened) == 1
