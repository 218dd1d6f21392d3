"""Bulk submission: NDJSON in, one result per line out, in order; bad lines never sink good ones."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from exchange.agencies.models import AgencyKind, Scope
from exchange.hub import Hub
from exchange.reports.models import Report
from exchange.statistics.models import StatTally
from tests.conftest import bearer, issue_key
from tests.reports.test_submit import WARNING, count


def ndjson(lines: list[Any]) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )


def post_bulk(client: TestClient, token: str, body: bytes) -> list[dict[str, Any]]:
    response = client.post(
        "/v1/reports:bulk",
        content=body,
        headers={**bearer(token), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def test_mixed_lines_each_get_their_own_answer_in_order(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    good = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    lines: list[Any] = [
        good,
        {
            "type": "village-early-warning",
            "allow_no_recipient": True,
            "payload": {**WARNING, "severity": "dire"},
        },
        b'{"type": "village-early',
        {"type": "passport-application-flag", "allow_no_recipient": True, "payload": {}},
        {**good, "idempotency_key": "line-5"},
        {**good, "idempotency_key": "line-5"},
        {**good, "idempotency_key": "line-5", "tlp": "RED"},
        {"type": "no-such-type", "allow_no_recipient": True, "payload": {}},
        good,
    ]
    results = post_bulk(client, token, ndjson(lines))
    assert [r["line"] for r in results] == list(range(1, 10))
    assert [r["status"] for r in results] == [202, 422, 400, 403, 202, 202, 409, 422, 202]
    assert results[1]["error"]["details"][0]["pointer"] == "/payload/severity"
    assert results[5]["result"] == results[4]["result"]  # replayed by its idempotency key
    assert count(hub, Report) == 3


def test_an_oversize_line_fails_alone(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    huge = {
        "type": "village-early-warning",
        "allow_no_recipient": True,
        "payload": {**WARNING, "narrative": "x" * 2_000_000},
    }
    good = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    results = post_bulk(client, token, ndjson([good, huge, good]))
    assert [r["status"] for r in results] == [202, 413, 202]


def test_many_lines_across_batches(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    lines = [
        {
            "type": "village-early-warning",
            "allow_no_recipient": True,
            "payload": {**WARNING, "persons_at_risk": {"count": n}},
        }
        for n in range(1, 1201)
    ]
    results = post_bulk(client, token, ndjson(lines))
    assert len(results) == 1200
    assert all(r["status"] == 202 for r in results)
    assert len({r["result"]["id"] for r in results}) == 1200
    assert count(hub, Report) == 1200


def test_bulk_needs_the_submit_scope(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police)
    response = client.post(
        "/v1/reports:bulk", content=ndjson([{"type": "x"}]), headers=bearer(token)
    )
    assert response.status_code == 403


def test_a_failed_batch_is_reported_per_line_and_leaves_nothing(
    client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.reports import router, service

    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    monkeypatch.setattr(router, "BULK_BATCH", 3)
    accept = service.accept

    def failing_on_line_five(session: Any, **kwargs: Any) -> Any:
        if kwargs["submission"].payload.get("persons_at_risk", {}).get("count") == 5:
            raise RuntimeError("the database went away")
        return accept(session, **kwargs)

    monkeypatch.setattr(service, "accept", failing_on_line_five)
    lines = [
        {
            "type": "village-early-warning",
            "allow_no_recipient": True,
            "payload": {**WARNING, "persons_at_risk": {"count": n}},
        }
        for n in range(1, 8)
    ]
    results = post_bulk(client, token, ndjson(lines))
    assert [r["status"] for r in results] == [202, 202, 202, 503, 503, 503, 202]
    assert results[3]["error"]["code"] == "not_committed"
    assert count(hub, Report) == 4


def test_a_line_whose_rows_the_database_refuses_is_never_answered_202(
    client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug stands in for a race: line one's rows include one the database refuses. Line
    two replays an idempotency key, and its read writes line one's rows: the refusal
    reaches it, and the replay swallows it. Line three is refused in its own savepoint.
    Whatever the order of writes and rollbacks, a 202 is answered only for a report that
    is stored (on SQLite the refused statement would leave line one's report behind): the
    batch, one unit of work whose rows the database refused, is answered 503 line by line,
    and nothing of it is kept."""
    from exchange.audit.models import AuditEvent
    from exchange.models import insert_rows, utcnow
    from exchange.reports import service

    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    good = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    assert (
        post_bulk(client, token, ndjson([{**good, "idempotency_key": "replayed"}]))[0]["status"]
        == 202
    )
    taken = {"id": "d" * 32, "action": "x", "subject": "x", "recorded_at": utcnow()}
    taken |= {"canonical": b"{}", "leaf_index": None}
    with hub.session() as session:
        insert_rows(session, AuditEvent, [taken])
    accept = service.accept

    def with_a_refused_row_on_line_one(session: Any, **kwargs: Any) -> Any:
        outcome = accept(session, **kwargs)
        if kwargs["submission"].payload["persons_at_risk"]["count"] == 1:
            insert_rows(session, AuditEvent, [taken])  # the same id again: refused
        return outcome

    monkeypatch.setattr(service, "accept", with_a_refused_row_on_line_one)
    invalid = {**WARNING, "severity": "dire", "persons_at_risk": {"count": 3}}
    results = post_bulk(
        client,
        token,
        ndjson(
            [
                {**good, "payload": {**WARNING, "persons_at_risk": {"count": 1}}},
                {**good, "idempotency_key": "replayed"},
                {**good, "idempotency_key": "new", "payload": invalid},
            ]
        ),
    )
    assert [r["status"] for r in results] == [503, 503, 503]
    assert {r["error"]["code"] for r in results} == {"not_committed"}
    assert count(hub, Report) == 1  # the first bulk's


def test_a_refused_line_in_its_savepoint_leaves_the_other_lines_tallies(
    client: TestClient, hub: Hub
) -> None:
    """A line with an Idempotency-Key is stored in a savepoint; its refusal rolls the
    savepoint back, and must not take the statistics of the batch's accepted lines with it."""
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    good = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    refused = {**good, "idempotency_key": "bad", "payload": {**WARNING, "severity": "dire"}}
    results = post_bulk(client, token, ndjson([good, refused, good]))
    assert [r["status"] for r in results] == [202, 422, 202]
    with hub.session() as session:
        counted = session.exec(
            select(func.sum(StatTally.reports)).where(
                StatTally.reader == "", StatTally.grain == "d"
            )
        ).one()
    assert counted == 2
