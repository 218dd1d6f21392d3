"""Reading JSON request bodies strictly: what the hub accepts is I-JSON (RFC 7493), so that
every document can be canonicalised (RFC 8785), stored and echoed back without surprises.

The parser is pydantic-core's (jiter), which already refuses bad UTF-8, unpaired surrogates
and nesting past its recursion limit; the walk below adds what I-JSON forbids and jiter
lets through (numbers that are not finite, integers beyond ±(2^53 - 1)) and U+0000, which
PostgreSQL cannot store in text. Every route uses
:class:`HubRoute`, whose requests parse their bodies this way; a refusal is a 400
``malformed_request`` with the pointer of the offending value."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute

from exchange.contracts import IJSON_INTEGER_LIMIT
from exchange.errors import MalformedRequest, UnacceptableJson, pointer_token
from exchange.i18n import t


def parse_json(body: bytes) -> Any:
    try:
        document = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as error:
        raise UnacceptableJson(str(error)) from None
    # U+0000 can only arrive escaped (a raw one is not JSON): strings need a look only then.
    strings = b"\\u0000" in body
    if _any_refused(document, strings=strings):
        # Rare: walk again, now building pointers, to say where.
        for pointer, value in _leaves(document):
            reason = _refusal(value, strings=strings)
            if reason:
                raise UnacceptableJson(reason, pointer=pointer)
    return document


def _refusal(value: Any, *, strings: bool) -> str | None:
    """Why I-JSON (or the database) refuses a leaf, if it does."""
    if strings and isinstance(value, str) and "\0" in value:
        return "a string holding U+0000, which no field can store"
    if isinstance(value, float) and not math.isfinite(value):
        return "a number too large to represent"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > IJSON_INTEGER_LIMIT:
        return "an integer beyond the interoperable range ±(2^53 - 1)"
    return None


def _any_refused(document: Any, *, strings: bool) -> bool:
    """Whether any leaf (object keys included) is refused: one pass with no pointers built,
    about what the parser itself costs."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if strings:
                pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif _refusal(value, strings=strings):
            return True
    return False


def _leaves(document: Any) -> Iterator[tuple[str, Any]]:
    """Every leaf of the document, object keys included, with its JSON pointer (iteratively:
    no recursion)."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        pointer, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{pointer}/{pointer_token(key)}"
                yield child, key
                pending.append((child, item))
        elif isinstance(value, list):
            pending.extend((f"{pointer}/{i}", v) for i, v in enumerate(value))
        else:
            yield pointer, value


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


# Forms are checked here; a multipart upload is read by its route only once the caller
# is known (the region directory: exchange/regions/service.py refuses U+0000 in it).
FORM = "application/x-www-form-urlencoded"


class HubRoute(APIRoute):
    """The route class of every router: its requests read JSON with :func:`parse_json`, and
    a path, query or form parameter holding U+0000 (which PostgreSQL cannot store) is
    refused before anything looks it up."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            # One request object throughout: it keeps the form it parsed for the handler.
            strict_request = StrictJsonRequest(request.scope, request.receive)
            places: list[tuple[str, Any]] = [
                ("path", request.path_params.items()),
                ("query", request.query_params.multi_items()),
            ]
            if request.headers.get("content-type", "").startswith(FORM):
                await strict_request.body()  # kept: a route may read the raw body after
                places.append(("body", (await strict_request.form()).multi_items()))
            for location, values in places:
                for name, value in values:
                    if isinstance(value, str | int) and "\0" in str(value):
                        raise MalformedRequest.at(
                            t("request.nul_in_parameter", name=name), f"/{name}", location=location
                        )
            return await handler(strict_request)

        return strict
