"""Pure ASGI middleware: load shedding before anything else is done, authentication before
any body is read, the request-body limit, and per-request metrics and access logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.agencies.models import Scope as KeyScope
from exchange.agencies.service import Principal, authenticate, public_key_id
from exchange.audit.failures import AuthFailureTally
from exchange.errors import (
    DATABASE_AWAY,
    AuthenticationFailed,
    BodyTooLarge,
    ExchangeError,
    Overloaded,
    PayloadTooLarge,
    database_unavailable,
    error_json,
)
from exchange.hub import Hub
from exchange.i18n import negotiate, t
from exchange.metrics import UNMATCHED_ROUTE, HttpMetrics
from exchange.ratelimit import RateLimited

access_log = logging.getLogger("exchange.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(error: ExchangeError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with ``error``'s JSON, in the caller's language, before the app sees the
    request."""
    locale = negotiate(_header(scope, b"accept-language"))
    await error_json(error, locale)(scope, receive, send)


BULK_ROUTE = ("POST", "/v1/reports:bulk")
# The console's region-directory upload: Kemendagri's full code list is over 2 MB.
REGION_UPLOAD_ROUTE = ("POST", "/console/admin/hub/regions")


class BodySizeLimit:
    """Refuse bodies over the limit: at once when Content-Length says so, and while reading
    when the body is chunked or the header lies. Only the bulk submission route, called
    with a key that may submit, has the larger bulk limit; it streams its body line by line,
    so the limit bounds the work, not the memory."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_bulk_bytes: int, max_upload_bytes: int
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_bulk_bytes = max_bulk_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit(self, scope: Scope) -> int:
        principal = scope.get("state", {}).get("principal")
        if (
            (scope.get("method"), scope.get("path")) == BULK_ROUTE
            and principal is not None
            and KeyScope.submit in principal.scopes
        ):
            return self.max_bulk_bytes
        if (scope.get("method"), scope.get("path")) == REGION_UPLOAD_ROUTE:
            return self.max_upload_bytes  # a hub admin's upload, checked once signed in
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            too_large = PayloadTooLarge(t("request.too_large", limit=limit))
            await _refuse(too_large, scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


SHED_RETRY_AFTER_S = 1
# Places for the readiness check and metrics, apart from the others: a load balancer and
# a scraper or two. One address holds two at most, so a flood of readiness checks from one
# peer leaves the load balancer's check a place in the queue, served in turn.
OPERATIONS_CAPACITY = 2
OPERATIONS_QUEUE = 8
OPERATIONS_PER_CLIENT = 2


class Lane:
    """Places for requests: at most ``capacity`` at work; at most ``queue`` more waiting, in
    order, each for at most ``max_wait_s``; at most ``per_client`` of them (at work and
    waiting) from one client address."""

    def __init__(self, *, capacity: int, queue: int, max_wait_s: float, per_client: int) -> None:
        self.capacity = capacity
        self.queue = queue
        self.max_wait_s = max_wait_s
        self.per_client = per_client
        self.working = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.by_client: dict[str, int] = {}

    async def enter(self, client: str | None) -> bool:
        """Take a place (True), or be refused one (False). A request is counted against its
        client while it waits too, so one address cannot fill the queue either."""
        if client is not None and self.by_client.get(client, 0) >= self.per_client:
            return False
        if self.working < self.capacity and not self.waiting:
            self.working += 1
            self._count(client, 1)
            return True
        if len(self.waiting) >= self.queue:
            return False
        self._count(client, 1)
        try:
            admitted = await self._waited()
        except BaseException:  # cancelled while it waited (the server shutting down)
            self._count(client, -1)
            raise
        if not admitted:
            self._count(client, -1)
        return admitted

    def leave(self, client: str | None) -> None:
        self._count(client, -1)
        self._hand_over()

    def _count(self, client: str | None, change: int) -> None:
        if client is None:
            return
        held = self.by_client.get(client, 0) + change
        if held:
            self.by_client[client] = held
        else:
            self.by_client.pop(client, None)

    async def _waited(self) -> bool:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await asyncio.wait({turn}, timeout=self.max_wait_s)
        except BaseException:
            self._give_up(turn)
            raise
        if turn.done():
            return True  # a request that finished handed its place over
        self._give_up(turn)
        return False

    def _give_up(self, turn: asyncio.Future[None]) -> None:
        if turn.done():  # handed a place just now: pass it on
            self._hand_over()
            return
        turn.cancel()
        self.waiting.remove(turn)

    def _hand_over(self) -> None:
        """Give a place that was let go to the longest waiting, or free it."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.working -= 1


class ShedLoad:
    """Take requests into lanes of limited places (:class:`Lane`) and answer those refused a
    place at once with 503 and Retry-After. Past its peak an unguarded hub takes every
    request, they all wait for the database together and most time out; guarded, it keeps
    serving at its peak and tells the excess to come back. Outermost but for telemetry, so
    that a shed request costs no authentication (that needs the database too).

    Two lanes: ``operations`` for the readiness check and metrics (small; they touch the
    database or Redis, so a flood of them is bounded too, and a flood of anything else
    never holds them up), ``requests`` for everything else. ``free`` paths (the liveness
    check, which touches nothing) take no place. The per-client cap keeps one address
    from holding every place, with slow bodies for instance: a place is held from the
    request's start to its end.

    Written here because the limit has to answer at once, with our error body, per client;
    the ASGI limiters we know of either queue without bound or reject without queueing."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        requests: Lane,
        operations: Lane,
        operations_paths: frozenset[str],
        free: frozenset[str],
    ) -> None:
        self.app = app
        self.requests = requests
        self.operations = operations
        self.operations_paths = operations_paths
        self.free = free

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.free:
            await self.app(scope, receive, send)
            return
        lane = self.operations if path in self.operations_paths else self.requests
        # A peer without an address (a unix socket) is nobody's share.
        client = (scope.get("client") or (None,))[0]
        if not await lane.enter(client):
            refusal = Overloaded(
                t("request.overloaded", seconds=SHED_RETRY_AFTER_S),
                headers={"Retry-After": str(SHED_RETRY_AFTER_S)},
            )
            await _refuse(refusal, scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            lane.leave(client)


class Authenticate:
    """Authenticate every request but those to public paths before anything reads its body:
    an anonymous or wrongly keyed caller costs no parsing, gets no validation feedback and
    learns nothing about what it sent. The principal goes into the request's state, where
    the routes' dependencies and the body limit find it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_paths: frozenset[str],
        own_authentication: tuple[str, ...] = ("/console", "/v1/intakes/"),
    ) -> None:
        self.app = app
        self.public_paths = public_paths
        # Paths that authenticate their callers themselves and take no API key: the console
        # signs people in with a session cookie (exchange/console/common.py), an intake
        # checks its channel's signature (exchange/intake/router.py).
        self.own_authentication = own_authentication

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.public_paths
            or any(
                path == prefix or path.startswith(prefix.rstrip("/") + "/")
                for prefix in self.own_authentication
            )
        ):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        tally: AuthFailureTally = state.auth_failures
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        token = token.strip()
        try:
            if scheme.lower() != "bearer" or not token:
                raise AuthenticationFailed(t("auth.missing"))
            principal = await run_in_threadpool(_authenticated, state.hub, token)
        except RateLimited as limited:  # a valid key, too busy: no authentication failure
            await _refuse(limited, scope, receive, send)
            return
        except DATABASE_AWAY as away:  # nor is a database restarting one
            await _refuse(database_unavailable(away), scope, receive, send)
            return
        except ExchangeError as refused:
            tally.add(
                reason=refused.message.key,
                key_id=public_key_id(token) if token else None,
            )
            await _refuse(refused, scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _authenticated(hub: Hub, token: str) -> Principal:
    """The key's principal, counted against the key's requests a minute."""
    # The session opens a connection only if the key must be read (exchange.directory).
    with hub.database.reading() as session:
        principal = authenticate(
            session, token=token, directory_version=hub.database.directory.read()
        )
    hub.requests.admit(principal.key_id)
    return principal


class RequestTelemetry:
    """Count and time every request by route template, and log it without headers or query."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            method = scope.get("method", "")
            self.metrics.observe(method=method, route=template, status=status, seconds=elapsed)
            principal = scope.get("state", {}).get("principal")
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "agency": getattr(principal, "agency_id", None),
                    "key_id": getattr(principal, "key_id", None),
                },
            )
