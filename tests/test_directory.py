"""What a process keeps of the directory (API keys, agencies, routing plans) is never
staler than the directory's version: a change made through another process, a revocation
above all, counts from the next request. Two hubs on one database stand for two processes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from exchange import directory
from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.delivery.models import Delivery
from exchange.directory import Kept
from exchange.hub import Hub
from exchange.models import utcnow
from exchange.routing.models import Subscription
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import WARNING, deliveries, submit, subscribe


@pytest.fixture
def other(settings: Settings) -> Iterator[TestClient]:
    """A second process on the same database (without worker threads)."""
    app = create_app(settings)
    yield TestClient(app)
    app.state.hub.close()


def other_hub(client: TestClient) -> Hub:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    return hub


def refusal(client: TestClient, token: str) -> tuple[int, str]:
    answer = client.get("/v1/me", headers=bearer(token))
    return answer.status_code, answer.json()["error"]["message"]


def village_and_police(hub: Hub) -> tuple[dict[str, str], dict[str, str]]:
    """Headers of a village officer who submits and of the regional police who receives."""
    village = issue_key(hub, "pimpasa-desa", [Scope.submit], kind=AgencyKind.village)
    police = issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police)
    return bearer(village), bearer(police)


def key_id(token: str) -> str:
    found = agencies.public_key_id(token)
    assert found is not None
    return found


def test_a_key_revoked_through_another_process_is_refused_at_its_next_request(
    client: TestClient, hub: Hub, other: TestClient
) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200  # now kept
    with other_hub(other).session() as session:
        agencies.revoke_api_key(
            session, agency_id="polda-banten", key_id=key_id(token), actor="test"
        )
    assert refusal(client, token) == (401, "The API key has been revoked.")


def test_an_agency_deactivated_through_another_process_is_refused_at_its_next_request(
    client: TestClient, hub: Hub, other: TestClient
) -> None:
    token = issue_key(hub, "dinsos-banten", [Scope.receive])
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    with other_hub(other).session() as session:
        agencies.update_agency(session, "dinsos-banten", active=False, actor="test")
    assert client.get("/v1/me", headers=bearer(token)).status_code == 403


def test_a_subscription_made_through_another_process_receives_the_next_report(
    client: TestClient, hub: Hub, other: TestClient
) -> None:
    village, polda = village_and_police(hub)
    first = submit(client, village, allow_no_recipient=True)  # no subscriber: planned, kept
    subscribe(other, polda)
    second = submit(client, village)
    assert deliveries(hub, report_id=first) == []
    assert [d.agency_id for d in deliveries(hub, report_id=second)] == ["polda-banten"]


def test_the_sender_agency_is_read_afresh_once_it_changes(
    client: TestClient, hub: Hub, other: TestClient
) -> None:
    village = bearer(
        issue_key(hub, "pimpasa-desa", [Scope.submit], kind=AgencyKind.village, jurisdiction="36")
    )
    submit(client, village, allow_no_recipient=True)  # the sender now kept
    with other_hub(other).session() as session:
        agencies.update_agency(session, "pimpasa-desa", require_signed_reports=True, actor="t")
    body = {"type": "village-early-warning", "payload": WARNING, "allow_no_recipient": True}
    unsigned = client.post("/v1/reports", json=body, headers=village)
    assert unsigned.status_code == 401, unsigned.text
    assert unsigned.json()["error"]["code"] == "signature_invalid"


def version_of(hub: Hub) -> int | None:
    with hub.session() as session:
        return directory.version(session)


def test_what_changes_the_directory_draws_a_new_version_and_nothing_else_does(
    client: TestClient, hub: Hub
) -> None:
    polda = bearer(issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police))
    subscription = subscribe(client, polda, throttle_per_s=1.0)
    start = version_of(hub)

    with hub.session() as session:  # the throttle's next slot: work, not the directory
        row = session.get(Subscription, subscription["id"])
        assert row is not None
        row.next_slot_at = utcnow()
    assert version_of(hub) == start

    with hub.session() as session:  # a reader's own rows are not the directory either
        session.execute(update(Delivery).values(last_error=None))
    assert version_of(hub) == start

    with hub.session() as session:  # an ORM change
        row = session.get(Subscription, subscription["id"])
        assert row is not None
        row.active = False
    after_orm = version_of(hub)
    assert after_orm != start

    with hub.session() as session:  # a statement, not through the ORM's flush
        session.execute(update(Subscription).values(active=True))
    after_statement = version_of(hub)
    assert after_statement not in (start, after_orm)

    with hub.session() as session:  # rolled back: nothing drawn
        row = session.get(Subscription, subscription["id"])
        assert row is not None
        row.active = False
        session.flush()
        assert directory.version(session) is None  # its own change: nothing kept from it
        session.rollback()
    assert version_of(hub) == after_statement

    with hub.session() as session:  # changed in a savepoint since rolled back: still its own
        with session.begin_nested() as savepoint:
            row = session.get(Subscription, subscription["id"])
            assert row is not None
            row.active = False
            session.flush()
            savepoint.rollback()
        assert directory.version(session) is None


def test_what_is_kept_is_bounded_and_never_an_unknown(hub: Hub) -> None:
    kept: Kept[str, str] = Kept(limit=2)
    loads: list[str] = []

    def loader(key: str) -> Callable[[], str | None]:
        def load() -> str | None:
            loads.append(key)
            return None if key == "unknown" else key.upper()

        return load

    with hub.session() as session:
        answers = [kept.get(session, key, loader(key)) for key in ["a", "b", "c"] * 2]
        unknown = [kept.get(session, "unknown", loader("unknown")) for _ in range(2)]
    assert answers == ["A", "B", "C"] * 2
    assert unknown == [None, None]
    assert loads == ["a", "b", "c", "c", "unknown", "unknown"]


def test_each_engine_keeps_its_own(hub: Hub, other: TestClient) -> None:
    """Each engine keeps apart what was read through it: in these tests one process runs
    hubs on many databases, copies of one template whose versions start equal. (The two
    hubs here share a database, and still keep apart.)"""
    kept: Kept[str, str] = Kept(limit=10)
    with hub.session() as one:
        assert kept.get(one, "k", lambda: "first") == "first"
    with other_hub(other).session() as two:
        assert kept.get(two, "k", lambda: "second") == "second"
    with hub.session() as one:
        assert kept.get(one, "k", lambda: "reloaded") == "first"


def test_a_key_is_read_once_while_the_directory_stands_still(
    client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    reads: list[str] = []
    original = agencies._key_on_file

    def counted(session: Session, key_id: str) -> agencies._KeyOnFile | None:
        reads.append(key_id)
        return original(session, key_id)

    monkeypatch.setattr(agencies, "_key_on_file", counted)
    for _ in range(3):
        assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    assert reads == [key_id(token)]
    issue_key(hub, "dinsos-banten", [Scope.receive])  # any change to the directory
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    assert reads == [key_id(token)] * 2


def test_a_kept_key_past_its_expiry_is_refused(
    client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hub.session() as session:
        agencies.create_agency(
            session, agency_id="polda-banten", name="Polda", kind=AgencyKind.police,
            jurisdiction="36", actor="test",
        )  # fmt: skip
        token = agencies.create_api_key(
            session,
            agency_id="polda-banten",
            scopes=[Scope.receive],
            expires_at=utcnow() + timedelta(days=1),
            actor="test",
        ).token
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200  # now kept
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr(agencies, "utcnow", lambda: later)
    assert refusal(client, token) == (401, "The API key has expired.")


def test_a_subscription_deleted_through_another_process_receives_no_more(
    client: TestClient, hub: Hub, other: TestClient
) -> None:
    village, polda = village_and_police(hub)
    subscription = subscribe(client, polda)
    first = submit(client, village)  # planned to polda-banten, the plan kept
    assert other.delete(f"/v1/subscriptions/{subscription['id']}", headers=polda).status_code in (
        200,
        204,
    )
    second = submit(client, village, allow_no_recipient=True)
    assert [d.agency_id for d in deliveries(hub, report_id=first)] == ["polda-banten"]
    assert deliveries(hub, report_id=second) == []


def test_a_transaction_keeps_reading_the_version_it_read_first(hub: Hub, other: TestClient) -> None:
    """Savepoints (the group writer runs each submission in one) do not make a transaction
    read the version again: an agency it loaded before another process changed it must
    not be kept under the newer version."""
    issue_key(hub, "pimpasa-desa", [Scope.submit], kind=AgencyKind.village, jurisdiction="36")
    with hub.database.reading() as first:  # (on SQLite, a writer would lock the other out)
        before = directory.version(first)
        held = agencies.get_agency(first, "pimpasa-desa")  # in the identity map
        with other_hub(other).session() as session:
            agencies.update_agency(session, "pimpasa-desa", jurisdiction="36.01", actor="t")
        with first.begin_nested():
            pass
        assert directory.version(first) == before
        assert held.jurisdiction == "36"
    with hub.session() as fresh:
        assert agencies.kept_agency(fresh, "pimpasa-desa").jurisdiction == "36.01"


def test_the_probe_replaces_a_connection_the_database_dropped(hub: Hub) -> None:
    probe = hub.database.directory
    read = probe.read()
    assert read is not None
    held = probe._connection
    assert held is not None
    held.connection.dbapi_connection.close()  # as a restarted database would leave it
    assert probe.read() == read


def test_the_probe_does_not_keep_a_request_waiting_behind_another(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory, "PROBE_WAIT_S", 0.01)
    probe = hub.database.directory
    answers: list[int | None] = []
    with probe._lock:  # another thread's read, hanging
        waiting = threading.Thread(target=lambda: answers.append(probe.read()), daemon=True)
        waiting.start()
        waiting.join(timeout=10)
        assert not waiting.is_alive()
    assert answers == [None]  # the caller reads in its own session instead
    assert probe.read() is not None
    probe.close()
    assert probe.read() is None


def test_what_is_kept_is_read_from_the_database_not_from_a_session(
    hub: Hub, other: TestClient
) -> None:
    """A session that held an agency from before another process changed it, and reads
    the version only afterwards, keeps what the database has, not what it held."""
    issue_key(hub, "pimpasa-desa", [Scope.submit], kind=AgencyKind.village)
    with hub.database.reading() as first:  # (on SQLite, a writer would lock the other out)
        held = agencies.get_agency(first, "pimpasa-desa")
        with other_hub(other).session() as session:
            agencies.update_agency(session, "pimpasa-desa", jurisdiction="36.01", actor="t")
        assert agencies.kept_agency(first, "pimpasa-desa").jurisdiction == "36.01"
        assert held is agencies.get_agency(first, "pimpasa-desa")  # still the one it held
    with hub.session() as fresh:
        assert agencies.kept_agency(fresh, "pimpasa-desa").jurisdiction == "36.01"


def test_a_change_not_yet_written_is_never_kept(hub: Hub) -> None:
    issue_key(hub, "pimpasa-desa", [Scope.submit], kind=AgencyKind.village)
    with hub.session() as session:
        agencies.get_agency(session, "pimpasa-desa").jurisdiction = "36.99"  # not flushed
        assert agencies.kept_agency(session, "pimpasa-desa").jurisdiction == "36.99"  # its own
        session.rollback()
    with hub.session() as fresh:
        assert agencies.kept_agency(fresh, "pimpasa-desa").jurisdiction == "36"
