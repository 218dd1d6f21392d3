"""One root error for the hub, a subclass per kind of failure, and the handler that turns
every failure — ours, FastAPI's or Starlette's — into the same JSON shape::

    {"error": {"code": "...", "message": "...", "details": [{"in": "body", "pointer": "/x", ...}]}}
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from exchange.i18n import CATALOGUE, Locale, Text, negotiate, t

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorDetail:
    """One thing wrong with the input, and where: ``pointer`` is an RFC 6901 JSON pointer into
    the part of the request named by ``location`` (body, query, path or header)."""

    message: Text
    pointer: str = ""
    location: str = "body"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def render(self, locale: Locale) -> dict[str, Any]:
        return {
            "in": self.location,
            "pointer": self.pointer,
            "message": self.message.render(locale),
            **self.extra,
        }


class ExchangeError(Exception):
    """Raised when the hub refuses or cannot complete an action; the root of all its errors."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: Text,
        *,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message.render("en"))
        self.message = message
        self.details = tuple(details)
        self.headers = dict(headers or {})

    @classmethod
    def at(cls, message: Text, pointer: str = "", *, location: str = "body") -> Self:
        """The error with one detail saying the same thing, at ``pointer``."""
        return cls(message, details=[ErrorDetail(message, pointer=pointer, location=location)])

    def body(self, locale: Locale) -> dict[str, Any]:
        """The JSON body a client sees for this error: the one place it is built."""
        return {
            "error": {
                "code": self.code,
                "message": self.message.render(locale),
                "details": [detail.render(locale) for detail in self.details],
            }
        }


class MalformedRequest(ExchangeError):
    """Raised when a request body cannot be parsed at all."""

    status = 400
    code = "malformed_request"


class AuthenticationFailed(ExchangeError):
    """Raised when a request carries no credentials, or credentials the hub does not accept."""

    status = 401
    code = "unauthenticated"

    def __init__(self, message: Text) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="exchange"'})


class PermissionDenied(ExchangeError):
    """Raised when an authenticated caller may not do what it asked."""

    status = 403
    code = "forbidden"


class NotFound(ExchangeError):
    """Raised when the thing asked for does not exist (or the caller may not know it does)."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ExchangeError):
    """Raised when a route exists but not for the method used."""

    status = 405
    code = "method_not_allowed"


class Conflict(ExchangeError):
    """Raised when an action clashes with what already exists."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ExchangeError):
    """Raised when a request body exceeds the configured limit."""

    status = 413
    code = "payload_too_large"


class InvalidInput(ExchangeError):
    """Raised when a well-formed request breaks a rule; ``details`` say which and where."""

    status = 422
    code = "invalid"


class NotReady(ExchangeError):
    """Raised when a dependency the hub needs (database, broker) cannot be reached."""

    status = 503
    code = "not_ready"


class Overloaded(ExchangeError):
    """Raised when the hub has more requests than it can take in time; Retry-After says
    when to send again."""

    status = 503
    code = "overloaded"


RETRY_AFTER_S = 2  # seconds a client waits before sending again while the database is away
DATABASE_AWAY = (OperationalError, InterfaceError, PoolTimeout)


def database_unavailable(cause: Exception) -> NotReady:
    """What a caller is told while the database is away: come back after Retry-After. The
    cause goes to the log (its kind only), never to the caller."""
    logger.warning("database unavailable", extra={"error": type(cause).__name__})
    return NotReady(t("request.database_unavailable"), headers={"Retry-After": str(RETRY_AFTER_S)})


class NotCommitted(ExchangeError):
    """Raised when work could not be stored (a bulk batch whose commit failed)."""

    status = 503
    code = "not_committed"


class InternalError(ExchangeError):
    """Raised in place of an unexpected failure: the caller gets an incident id, nothing
    of what failed."""

    status = 500
    code = "internal"


class ConfigurationError(ExchangeError):
    """Raised when the settings or key files do not allow the hub to start safely."""

    status = 500
    code = "misconfigured"


class BodyTooLarge(StarletteHTTPException):
    """Raised when a request body grows past the limit while it is being read.

    A Starlette HTTPException rather than one of ours so that FastAPI passes it through its
    body parsing untouched (it turns other exceptions there into a generic 400).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413)
        self.limit = limit


class UnacceptableJson(StarletteHTTPException):
    """Raised when a body is not JSON the hub accepts: not JSON at all, or not I-JSON
    (:mod:`exchange.jsonbody`). A Starlette HTTPException for the same reason as
    :class:`BodyTooLarge`."""

    def __init__(self, reason: str, *, pointer: str = "") -> None:
        super().__init__(status_code=400)
        self.reason = reason
        self.pointer = pointer


class ErrorDetailOut(BaseModel):
    """One thing wrong, and where (an RFC 6901 pointer into the part named by ``in``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    in_: str = Field(alias="in")
    pointer: str
    message: str


class ErrorOut(BaseModel):
    code: str
    message: str
    details: list[ErrorDetailOut]


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorOut


# What any endpoint may answer besides its success, documented once for the whole API.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request: not JSON, or not I-JSON (the pointer says where)",
        401: "No API key, or one the hub does not accept",
        403: "The key may not do this",
        404: "Nothing there, or nothing the caller may see",
        405: "The method is not allowed here (Allow lists those that are)",
        409: "Conflicts with what exists",
        410: "Purged",
        413: "The body is over the limit",
        422: "Breaks a rule; the details say which and where",
        429: "Too many requests; Retry-After says when to come back",
        503: "A dependency (database, broker) cannot be reached",
    }.items()
}


def error_json(error: ExchangeError, locale: Locale) -> JSONResponse:
    """The response a client sees for ``error``, in its language."""
    return JSONResponse(
        error.body(locale),
        status_code=error.status,
        headers={**error.headers, "Content-Language": locale},
    )


def error_response(request: Request, error: ExchangeError) -> JSONResponse:
    return error_json(error, negotiate(request.headers.get("accept-language")))


def pointer_token(part: object) -> str:
    """One reference token of an RFC 6901 JSON pointer: ``~`` and ``/`` escaped."""
    return str(part).replace("~", "~0").replace("/", "~1")


def json_pointer(path: Iterable[object]) -> str:
    """The RFC 6901 pointer of a path of keys and indices."""
    return "".join("/" + pointer_token(part) for part in path)


def pointer_from_location(location: Sequence[str | int]) -> str:
    """RFC 6901 pointer for a pydantic ``loc`` path (its first element names the part)."""
    return json_pointer(location[1:])


def _validation_detail(error: Mapping[str, Any]) -> ErrorDetail:
    location = tuple(error.get("loc", ()))
    part = str(location[0]) if location else "body"
    error_type = str(error.get("type", ""))
    context = dict(error.get("ctx") or {})
    key = f"validation.{error_type}"
    message = (
        Text(key, {k: str(v) for k, v in context.items()} | {"reason": error.get("msg", "")})
        if key in CATALOGUE
        else Text("validation.value_error", {"reason": error.get("msg", "")})
    )
    return ErrorDetail(
        message=message,
        pointer=pointer_from_location(location),
        location=part,
        extra={"type": error_type},
    )


def translate_validation_error(exc: RequestValidationError) -> ExchangeError:
    """FastAPI's request validation failure as one of ours: bad JSON is a 400, the rest 422."""
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = str((error.get("ctx") or {}).get("error", "unexpected input"))
            position = error.get("loc", ("body", 0))
            return MalformedRequest(
                t("request.malformed_json", reason=reason),
                details=[
                    ErrorDetail(
                        t("request.malformed_json", reason=reason),
                        pointer="",
                        extra={"position": position[-1] if len(position) > 1 else 0},
                    )
                ],
            )
    return InvalidInput(t("request.invalid"), details=[_validation_detail(e) for e in errors])


def translate_model_error(exc: ValidationError, *, at: tuple[str | int, ...] = ()) -> ExchangeError:
    """A pydantic failure on a document validated outside FastAPI (a CLI argument set, a bulk
    line, a connector's config found at ``at`` in the body), as the same error a request
    body would give, pointers included."""
    return translate_validation_error(
        RequestValidationError(
            [{**e, "loc": ("body", *at, *e["loc"])} for e in exc.errors(include_url=False)]
        )
    )


HTTP_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette names only those of
    the first route that matched the path; a path can have several (GET and PATCH of one
    agency are two routes), so each method is tried against the whole router."""
    methods = {
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def malformed_json(exc: UnacceptableJson) -> MalformedRequest:
    return MalformedRequest.at(t("request.malformed_json", reason=exc.reason), exc.pointer)


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure, expected or not, answer in the hub's JSON error shape."""

    async def on_exchange_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ExchangeError)
        return error_response(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, translate_validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        error: ExchangeError
        if isinstance(exc, BodyTooLarge):
            error = PayloadTooLarge(t("request.too_large", limit=exc.limit))
        elif isinstance(exc, UnacceptableJson):
            error = malformed_json(exc)
        elif exc.status_code == 404:
            error = NotFound(t("request.route_not_found", path=path))
        elif exc.status_code == 405:
            error = MethodNotAllowed(
                t("request.method_not_allowed", method=request.method, path=path),
                headers={"Allow": ", ".join(allowed_methods(request))},
            )
        else:
            error = ExchangeError(t("request.invalid"))
            error.status = exc.status_code
        return error_response(request, error)

    async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database restarting, unreachable or (SQLite) locked past the timeout: the
        # request failed and may be sent again (if the connection broke in the very commit
        # it may have been stored: an idempotency key makes the resend answer as the first
        # did). The cause goes to the log, not to the caller.
        return error_response(request, database_unavailable(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DATABASE_AWAY):  # raised in a middleware, outside the handlers
            return await on_database_unavailable(request, exc)
        incident = uuid.uuid4().hex[:12]
        # The traceback goes to the log under the incident id; the caller gets the id only.
        # The route's template, not the path: a path may carry a secret (a reset link).
        route = request.scope.get("route")
        where = getattr(route, "path", None) or "(no route)"
        logger.error("unhandled error", exc_info=exc, extra={"incident": incident, "path": where})
        return error_response(request, InternalError(t("request.internal", incident=incident)))

    app.add_exception_handler(ExchangeError, on_exchange_error)
    for unavailable in DATABASE_AWAY:
        app.add_exception_handler(unavailable, on_database_unavailable)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
