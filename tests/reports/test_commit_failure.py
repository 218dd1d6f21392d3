"""A submission is answered 2xx only once its transaction committed: when the commit itself
fails (the disk is full, the database went away between the last insert and COMMIT), every
submission of that transaction is answered 503 and nothing of it is stored. Injected at the
commit, after every submission in the transaction was accepted, on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from exchange.agencies.models import AgencyKind, Scope
from exchange.audit.models import AuditEvent
from exchange.delivery.models import Delivery
from exchange.hub import Hub
from exchange.reports.models import Report
from tests.conftest import bearer, issue_key
from tests.reports.test_bulk import ndjson, post_bulk
from tests.reports.test_submit import WARNING, count

DOOMED = "test.commit_fails"


@pytest.fixture
def doomed_commits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The first session in which a report with 5 persons at risk was accepted fails at
    commit (as SQLite does when the disk is full)."""
    from exchange.reports import service

    accept = service.accept
    failed: list[Session] = []

    def marking(session: Session, **kwargs: Any) -> Any:
        outcome = accept(session, **kwargs)
        if kwargs["submission"].payload.get("persons_at_risk", {}).get("count") == 5 and not failed:
            assert outcome.status == 202  # accepted: only the commit can now fail
            session.info[DOOMED] = True
        return outcome

    def fail(session: Session) -> None:
        if session.info.pop(DOOMED, False):
            failed.append(session)
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError("disk is full"))

    monkeypatch.setattr(service, "accept", marking)
    event.listen(Session, "before_commit", fail)
    yield
    event.remove(Session, "before_commit", fail)


def line(persons: int) -> dict[str, Any]:
    return {
        "type": "village-early-warning",
        "allow_no_recipient": True,
        "payload": {**WARNING, "persons_at_risk": {"count": persons}},
    }


@pytest.mark.usefixtures("doomed_commits")
def test_a_bulk_batch_whose_commit_fails_is_answered_503_line_by_line_and_leaves_nothing(
    client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.reports import router

    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    monkeypatch.setattr(router, "BULK_BATCH", 3)
    events_before = count(hub, AuditEvent)
    results = post_bulk(client, token, ndjson([line(n) for n in range(1, 8)]))
    # Lines 4-6 were one transaction; line 5's acceptance dooms its commit.
    assert [r["status"] for r in results] == [202, 202, 202, 503, 503, 503, 202]
    assert {r["error"]["code"] for r in results[3:6]} == {"not_committed"}
    stored = {r["result"]["id"] for r in results if r["status"] == 202}
    with hub.session() as session:
        assert set(session.exec(select(Report.id))) == stored
        assert set(session.exec(select(Delivery.report_id))) <= stored
    # Two events (submitted, routed) for each stored report, none for the lost batch.
    assert count(hub, AuditEvent) - events_before == 2 * len(stored)


@pytest.mark.usefixtures("doomed_commits")
def test_a_single_submission_whose_commit_fails_is_answered_503_and_leaves_nothing(
    client: TestClient, hub: Hub
) -> None:
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    kept = client.post("/v1/reports", json=line(4), headers=bearer(token))
    assert kept.status_code == 202
    lost = client.post("/v1/reports", json=line(5), headers=bearer(token))
    assert lost.status_code == 503, lost.text
    assert "id" not in lost.json()
    assert lost.headers["Retry-After"]
    assert count(hub, Report) == 1
    again = client.post("/v1/reports", json=line(5), headers=bearer(token))  # the retry works
    assert again.status_code == 202
    assert count(hub, Report) == 2
