"""A flood of bad submissions cannot flood the permanent log, and a key submits at most so
many reports a minute: counted in memory for one process, in Redis across processes."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.audit.failures import MAX_DISTINCT_REJECTIONS, RejectionTally
from exchange.audit.models import AuditEvent
from exchange.hub import Hub
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.reports.test_submit import WARNING, summarise_rejections
from tests.servers import RedisServer


def village_key(hub: Hub, agency: str = "pimpasa-tanjakan-mekar") -> dict[str, str]:
    return bearer(issue_key(hub, agency, [Scope.submit], kind=AgencyKind.village))


def bulk(client: TestClient, headers: dict[str, str], lines: list[Any]) -> list[dict[str, Any]]:
    response = client.post(
        "/v1/reports:bulk",
        content=b"".join(
            (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
        ),
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    return [orjson.loads(line) for line in response.text.splitlines()]


def rejected_events(hub: Hub) -> list[dict[str, Any]]:
    summarise_rejections(hub)
    with hub.session() as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "report.rejected")
        ).all()
    return [json.loads(e.canonical) for e in events]


def test_thousands_of_rejections_make_one_event_per_distinct_error(
    client: TestClient, hub: Hub
) -> None:
    village = village_key(hub)
    invalid = {
        "type": "village-early-warning",
        "allow_no_recipient": True,
        "payload": {**WARNING, "severity": "dire"},
    }
    results = bulk(client, village, [invalid] * 2000 + [{"payload": {}}] * 5 + [b"{"] * 5)
    assert {r["status"] for r in results} == {422, 400}
    refused_type = client.post("/v1/reports", json={"type": 5}, headers=village)
    assert refused_type.status_code == 422  # refused by request validation: counted too
    events = rejected_events(hub)
    counts = sorted((e["details"]["code"], e["details"]["count"]) for e in events)
    assert counts == [("invalid", 1), ("invalid", 5), ("invalid", 2000), ("malformed_request", 5)]
    assert all(e["actor"].startswith("agency:pimpasa-tanjakan-mekar/key:") for e in events)


@pytest.mark.usefixtures("mid_window_rate_limits")
def test_a_key_past_its_limit_is_told_when_to_come_back(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"submissions_per_minute_per_key": 3}))
    with TestClient(app) as client:
        hub: Hub = app.state.hub
        village = village_key(hub)
        body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
        statuses = [client.post("/v1/reports", json=body, headers=village) for _ in range(4)]
        assert [r.status_code for r in statuses] == [202, 202, 202, 429]
        refused = statuses[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Bulk lines count one each; the refusal is per line. Another key is not affected.
        other = village_key(hub, "pimpasa-other")
        results = bulk(client, other, [body] * 5)
        assert [r["status"] for r in results] == [202, 202, 202, 429, 429]
        assert results[3]["error"]["code"] == "rate_limited"


@pytest.mark.redis
def test_the_limit_is_shared_by_every_process_through_redis(
    settings: Settings, redis_server: RedisServer
) -> None:
    shared = settings.model_copy(
        update={"broker_url": redis_server.url, "submissions_per_minute_per_key": 2}
    )
    first, second = create_app(shared), create_app(shared)
    with TestClient(first) as one, TestClient(second) as two:
        village = village_key(first.state.hub, "pimpasa-redis-limit")
        body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
        answers = [
            api.post("/v1/reports", json=body, headers=village).status_code
            for api in (one, two, one, two)
        ]
    assert answers == [202, 202, 429, 429]


@pytest.mark.usefixtures("mid_window_rate_limits")
def test_every_request_of_a_key_counts_against_its_limit(settings: Settings) -> None:
    """Reads are audited, so a loop of reads would flood the log: any request counts."""
    app = create_app(settings.model_copy(update={"requests_per_minute_per_key": 5}))
    with TestClient(app) as client:
        hub: Hub = app.state.hub
        key = bearer(issue_key(hub, "polda-banten", [Scope.receive]))
        answers = [client.get("/v1/me", headers=key) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert answers[-1].json()["error"]["code"] == "rate_limited"
        assert int(answers[-1].headers["retry-after"]) >= 1
        other = bearer(issue_key(hub, "dinsos-banten", [Scope.receive]))
        assert client.get("/v1/me", headers=other).status_code == 200


def test_one_submitter_cannot_crowd_out_anothers_rejections() -> None:
    tally = RejectionTally()
    for number in range(MAX_DISTINCT_REJECTIONS + 10):
        tally.add(
            agency_id="noisy",
            actor="agency:noisy/key:a",
            report_type="t",
            code="invalid",
            status=422,
            pointers=(f"/payload/{number}",),
        )
    tally.add(
        agency_id="quiet",
        actor="agency:quiet/key:b",
        report_type="t",
        code="invalid",
        status=422,
        pointers=("/payload/x",),
    )
    events = tally._take(0, 60)
    noisy = [e for e in events if e.subject == "agency:noisy"]
    assert len(noisy) == MAX_DISTINCT_REJECTIONS + 1  # its own, and the rest as "other"
    assert sum(e.details["count"] for e in noisy) == MAX_DISTINCT_REJECTIONS + 10
    (quiet,) = [e for e in events if e.subject == "agency:quiet"]
    assert quiet.details["problems"] == ["/payload/x"]
