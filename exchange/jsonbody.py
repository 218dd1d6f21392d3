"""Reading JSON request bodies strictly: what the hub accepts is I-JSON (RFC 7493), so that
every document can be canonicalised (RFC 8785), stored and echoed back without surprises.

The parser is pydantic-core's (jiter), which already refuses bad UTF-8, unpaired surrogates
and nesting past its recursion limit; the walk below adds what I-JSON forbids and jiter
lets through: numbers that are not finite, and integers beyond ±(2^53 - 1). Every route uses
:class:`HubRoute`, whose requests parse their bodies this way; a refusal is a 400
``malformed_request`` with the pointer of the offending value."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute

from exchange.errors import UnacceptableJson

IJSON_INTEGER_LIMIT = 2**53 - 1


def parse_json(body: bytes) -> Any:
    try:
        document = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as error:
        raise UnacceptableJson(str(error)) from None
    for pointer, value in _numbers(document):
        if isinstance(value, float) and not math.isfinite(value):
            raise UnacceptableJson("a number too large to represent", pointer=pointer)
        if isinstance(value, int) and abs(value) > IJSON_INTEGER_LIMIT:
            raise UnacceptableJson(
                "an integer beyond the interoperable range ±(2^53 - 1)", pointer=pointer
            )
    return document


def _numbers(document: Any) -> list[tuple[str, int | float]]:
    """Every number in the document with its JSON pointer (iteratively: no recursion)."""
    found: list[tuple[str, int | float]] = []
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        pointer, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{pointer}/{_escaped(k)}", v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((f"{pointer}/{i}", v) for i, v in enumerate(value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.append((pointer, value))
    return found


def _escaped(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class HubRoute(APIRoute):
    """The route class of every router: its requests read JSON with :func:`parse_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
