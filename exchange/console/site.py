"""The console as one piece: its routers, its static files, and its refusals as pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from exchange.console import administration, auditing, desk, field, signin, statistics
from exchange.console.common import (
    HERE,
    PREFIX,
    ConsoleDenied,
    ConsoleForbidden,
    page,
    redirect,
    refusal,
)
from exchange.errors import ExchangeError, translate_validation_error


def install(app: FastAPI) -> None:
    """Mount the console's pages and its static files, and turn its refusals into pages."""
    for module in (signin, desk, statistics, field, auditing, administration):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    async def to_next_step(request: Request, denied: Exception) -> Response:
        assert isinstance(denied, ConsoleDenied)
        return redirect(denied.location)

    async def forbidden(request: Request, _: Exception) -> Response:
        return page(request, "error.html", status=403, reason="forbidden")

    app.add_exception_handler(ConsoleDenied, to_next_step)
    app.add_exception_handler(ConsoleForbidden, forbidden)
    _as_pages(app, ExchangeError, lambda error: error)
    _as_pages(app, RequestValidationError, translate_validation_error)


def _as_pages(
    app: FastAPI, kind: type[Exception], as_error: Callable[[Any], ExchangeError]
) -> None:
    """A refusal of a console request answers as a page (status, message, where), an API
    request's as the JSON error it always was."""
    api_handler: Callable[[Request, Exception], Awaitable[Response]] = app.exception_handlers[kind]  # type: ignore[assignment]  # ours are all async

    async def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(f"{PREFIX}/"):
            return refusal(request, as_error(exc), None)
        return await api_handler(request, exc)

    app.add_exception_handler(kind, handler)
