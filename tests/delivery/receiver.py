"""A webhook receiver on loopback, built the way a recipient would build one: it verifies
every request with the ``standardwebhooks`` package, parses the body with the ``cloudevents``
package, and can misbehave on purpose (fail, hang, say 410 or 429) for the drills."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_structured_event
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    envelope_id: str
    headers: dict[str, str]
    body: bytes
    event: BaseCloudEvent


# A behaviour sees the request number (1-based, per envelope id) and answers
# (status, headers) or None to hang until the hub gives up.
Behaviour = Callable[[str, int], tuple[int, dict[str, str]] | None]


def always_ok(_envelope_id: str, _attempt: int) -> tuple[int, dict[str, str]]:
    return 200, {}


@dataclass
class Receiver:
    secret: str = ""
    behaviour: Behaviour = always_ok
    accepted: list[Received] = field(default_factory=list)
    refused_signatures: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted_ids(self) -> list[str]:
        with self._lock:
            return [r.envelope_id for r in self.accepted]

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]] | None:
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.refused_signatures += 1
            return 401, {}
        event = from_structured_event(HTTPMessage(headers=headers, body=body))
        envelope_id = str(event.get_id())
        with self._lock:
            self.requests[envelope_id] += 1
            number = self.requests[envelope_id]
        answer = self.behaviour(envelope_id, number)
        if answer is None:
            self._release.wait(30)
            return None
        if 200 <= answer[0] < 300:
            with self._lock:
                self.accepted.append(Received(envelope_id, headers, body, event))
        return answer


@contextmanager
def running_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = receiver.handle(headers, body)
            if answer is None:
                return  # the hub timed out and hung up long ago
            status, extra = answer
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on what was received."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver._release.set()
        server.shutdown()
        server.server_close()
