"""Pure ASGI middleware: the request-body limit, and per-request metrics and access logs."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import BodyTooLarge, error_body
from exchange.i18n import negotiate, t
from exchange.metrics import UNMATCHED_ROUTE, HttpMetrics

access_log = logging.getLogger("exchange.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


BULK_SUFFIX = ":bulk"


class BodySizeLimit:
    """Refuse bodies over the limit: at once when Content-Length says so, and while reading
    when the body is chunked or the header lies. Bulk endpoints (``...:bulk``) have their
    own, larger limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_bulk_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_bulk_bytes = max_bulk_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.max_bulk_bytes
            if str(scope.get("path", "")).endswith(BULK_SUFFIX)
            else self.max_bytes
        )
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            locale = negotiate(_header(scope, b"accept-language"))
            body = error_body("payload_too_large", t("request.too_large", limit=limit), (), locale)
            response = JSONResponse(body, status_code=413, headers={"Content-Language": locale})
            await response(scope, receive, send)
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


class RequireCredentials:
    """Answer 401 at once to a request without a bearer credential, except on the public
    paths, before anything reads its body: an anonymous caller gets no validation feedback
    and costs no parsing. Whether the credential is valid is for the routes to check."""

    def __init__(self, app: ASGIApp, *, public_paths: frozenset[str]) -> None:
        self.app = app
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        tally = getattr(state, "auth_failures", None)
        if tally is not None:
            tally.add(reason="auth.missing", key_id=None)
        locale = negotiate(_header(scope, b"accept-language"))
        response = JSONResponse(
            error_body("unauthenticated", t("auth.missing"), (), locale),
            status_code=401,
            headers={"Content-Language": locale, "WWW-Authenticate": 'Bearer realm="exchange"'},
        )
        await response(scope, receive, send)


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
