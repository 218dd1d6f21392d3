"""Nothing reads a body before its sender is authenticated, and only the bulk route, for a
key that may submit, accepts a large one — which it reads line by line in bounded memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.reports.lines import OVERSIZE, LineSplitter
from exchange.settings import Settings
from tests.conftest import issue_key

MiB = 1024 * 1024


def call(
    app: FastAPI, method: str, path: str, *, token: str, chunks: list[bytes], declared: int
) -> tuple[int, bytes, int]:
    """Send one request straight to the ASGI app; answer the status, the body and how many
    body chunks the app asked for."""
    asked = 0
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not pending:  # the whole body was read: wait, as a client does, for the answer
            await asyncio.Event().wait()
        asked += 1
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/x-ndjson"),
            (b"content-length", str(declared).encode()),
        ],
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, asked


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def test_a_wrong_key_is_refused_before_its_body_is_read(app: FastAPI) -> None:
    status, body, asked = call(
        app,
        "PATCH",
        "/v1/agencies/foo:bulk",
        token="exk_0000000000000000_not-a-real-secret",
        chunks=[b"x" * MiB] * 4,
        declared=252 * MiB,
    )
    assert status == 401
    assert orjson.loads(body)["error"]["code"] == "unauthenticated"
    assert asked == 0


def test_only_the_bulk_route_and_a_submit_key_get_the_bulk_limit(app: FastAPI) -> None:
    hub = app.state.hub
    receiver = issue_key(hub, "polda-banten", [Scope.receive])
    submitter = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    two_mib = 2 * MiB  # over the 1 MiB request limit, under the bulk limit
    for method, path, token in [
        ("PATCH", "/v1/agencies/foo:bulk", submitter),  # not the bulk route
        ("POST", "/v1/reports:bulk", receiver),  # the bulk route, a key that may not submit
    ]:
        status, _body, asked = call(
            app, method, path, token=token, chunks=[b"x" * two_mib], declared=two_mib
        )
        assert (status, asked) == (413, 0), (method, path)
    status, body, _asked = call(
        app,
        "POST",
        "/v1/reports:bulk",
        token=submitter,
        chunks=[b"x" * MiB, b"x" * MiB, b"x" * 1000],  # one endless line, over the line limit
        declared=2 * MiB + 1000,
    )
    assert status == 200
    (line,) = [orjson.loads(line) for line in body.splitlines()]
    assert (line["line"], line["status"]) == (1, 413)


def test_a_line_that_never_ends_is_dropped_as_it_arrives() -> None:
    splitter = LineSplitter(limit=MiB)
    chunk = b"x" * (64 * 1024)
    tracemalloc.start()
    try:
        lines = [line for _ in range(400) for line in splitter.feed(chunk)]  # 25 MiB
        lines += list(splitter.feed(b'\n{"a": 1}\n'))
        lines += list(splitter.close())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [OVERSIZE, b'{"a": 1}']
    assert peak < 4 * MiB  # one line at most (1 MiB) and a chunk, never the 25 MiB


def test_lines_split_across_chunks_and_a_last_line_without_newline() -> None:
    splitter = LineSplitter(limit=10)
    lines = [*splitter.feed(b"ab"), *splitter.feed(b"c\n\n  \nde"), *splitter.feed(b"f\n0123")]
    lines += list(splitter.feed(b"4567890123\nxyz"))
    lines += list(splitter.close())
    assert lines == [b"abc", b"def", OVERSIZE, b"xyz"]


def test_a_line_of_exactly_the_limit_may_end_in_crlf() -> None:
    splitter = LineSplitter(limit=5)
    lines = [*splitter.feed(b"12345\r\n123456\r\n12345\n"), *splitter.close()]
    assert lines == [b"12345", OVERSIZE, b"12345"]
