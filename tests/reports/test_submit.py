"""Submitting reports: every rule, every bad input, idempotency under concurrency, sender
signatures, the region directory, and what the audit log keeps."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import csv
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import func, select

from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.audit.models import AuditEvent
from exchange.crypto import b64url, jwk_thumbprint, raw_public_bytes
from exchange.hub import Hub
from exchange.regions import service as regions
from exchange.registry.service import SchemaRegistry, default_schemas_dir
from exchange.reports import service
from exchange.reports.contracts import ReportSubmission
from exchange.reports.models import Report
from exchange.settings import Settings
from exchange.writer import GroupWriter
from tests.conftest import bearer, issue_key, signing_key
from tests.servers import serving
from tests.test_deferred_inserts import one_group

WILAYAH = regions.SHIPPED_DIRECTORY
REGISTRY = SchemaRegistry(default_schemas_dir())


def example(report_type: str, name: str) -> dict[str, Any]:
    path = default_schemas_dir() / report_type / "examples" / "valid" / f"{name}.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


WARNING = example("village-early-warning", "calo-group-departure")


@pytest.fixture
def village(hub: Hub) -> dict[str, str]:
    return bearer(issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village))


def summarise_rejections(hub: Hub) -> None:
    """What the hub does each minute: write the window's rejections to the audit log."""
    with hub.session() as session:
        hub.rejections.record_summary(session)


def count(hub: Hub, model: Any, **where: Any) -> int:
    with hub.session() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(session.exec(query).one())


def submit(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], **extra: str
) -> httpx.Response:
    return client.post("/v1/reports", json=body, headers={**headers, **extra})


def load_banten(hub: Hub) -> None:
    """The Banten part of the region directory the hub ships."""
    with WILAYAH.open(encoding="utf-8") as source:
        rows = [r for r in csv.reader(source) if r[0] == "code" or r[0].startswith("36")]
    lines = [f"{code},{name}\n" for code, name in rows]
    with hub.session() as session:
        regions.import_directory(session, lines=lines, actor="test")


# --- accepted -------------------------------------------------------------------------------

SUBMITTER_KIND = {
    "village-early-warning": AgencyKind.village,
    "passport-application-flag": AgencyKind.immigration,
    "departure-interception": AgencyKind.immigration,
    "victim-referral": AgencyKind.social,
    "case-update": AgencyKind.police,
    "recruitment-actor-alert": AgencyKind.manpower,
}
VALID = [
    pytest.param(rt.name, path, id=f"{rt.name}/{path.stem}")
    for rt in REGISTRY.latest()
    for path, valid in rt.examples()
    if valid
]


@pytest.mark.parametrize(("report_type", "path"), VALID)
def test_each_valid_example_is_accepted(
    client: TestClient, hub: Hub, report_type: str, path: Path
) -> None:
    token = bearer(
        issue_key(
            hub, "sender-agency", [Scope.submit, Scope.receive], kind=SUBMITTER_KIND[report_type]
        )
    )
    payload = json.loads(path.read_text())
    if report_type == "case-update":  # it must refer to reports its sender has seen
        subscribed = client.post("/v1/subscriptions", json={"connector": "inbox"}, headers=token)
        assert subscribed.status_code == 201, subscribed.text
        village = bearer(issue_key(hub, "pimpasa-x", [Scope.submit], kind=AgencyKind.village))
        earlier = submit(
            client,
            village,
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
        )
        payload["references"] = [earlier.json()["id"]]
    for pattern in REGISTRY.get(report_type).recipient_paths:  # agencies it names exist
        issue_key(hub, payload[pattern.strip("/")], [Scope.receive])
    response = submit(
        client, token, {"type": report_type, "allow_no_recipient": True, "payload": payload}
    )
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["version"] == REGISTRY.get(report_type).version  # the latest
    assert result["tlp"] == REGISTRY.get(report_type).default_tlp
    assert result["payload_hash"] == hashlib.sha256(rfc8785.dumps(payload)).hexdigest()
    read = client.get(f"/v1/reports/{result['id']}", headers=token)
    assert read.status_code == 200
    assert read.json()["payload"] == payload


def test_acceptance_is_audited_with_hashes_not_payload(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    result = submit(
        client,
        village,
        {
            "type": "village-early-warning",
            "tlp": "RED",
            "payload": WARNING,
            "allow_no_recipient": True,
        },
    ).json()
    with hub.session() as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.id == result["audit_event_id"])
        ).one()
    logged = json.loads(event.canonical)
    assert logged["action"] == "report.submitted"
    assert logged["details"]["payload_hash"] == result["payload_hash"]
    assert logged["details"]["tlp"] == "RED"
    assert b"Siti" not in event.canonical
    assert b"3603114505950001" not in event.canonical


# --- rejected -------------------------------------------------------------------------------


def test_a_type_the_agency_may_not_submit_is_403(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    body = {
        "type": "passport-application-flag",
        "payload": example("passport-application-flag", "deferred-work-as-tourism"),
    }
    response = submit(client, village, body)
    assert response.status_code == 403
    assert "immigration" in response.json()["error"]["message"]
    assert count(hub, Report) == 0
    summarise_rejections(hub)
    assert count(hub, AuditEvent, action="report.rejected") == 1


def test_every_violation_is_reported_with_pointer_and_schema_path(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    payload = {**WARNING, "village_code": "36.03.11", "indicators": [], "severity": "dire"}
    del payload["observed_at"]
    response = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": payload},
        **{"Accept-Language": "id"},
    )
    assert response.status_code == 422
    details = {d["pointer"]: d for d in response.json()["error"]["details"]}
    assert set(details) == {
        "/payload",
        "/payload/village_code",
        "/payload/indicators",
        "/payload/severity",
    }
    assert details["/payload"]["message"] == "Kolom 'observed_at' wajib diisi."
    assert details["/payload/severity"]["schema_path"].endswith("/enum")
    assert details["/payload/village_code"]["type"] == "pattern"
    assert count(hub, Report) == 0
    summarise_rejections(hub)
    rejected = count(hub, AuditEvent, action="report.rejected")
    assert rejected == 1


@pytest.mark.parametrize(
    ("body", "pointer", "fragment"),
    [
        (
            {"type": "village-warning", "allow_no_recipient": True, "payload": {}},
            "/type",
            "known types: case-update",
        ),
        (
            {"type": "village-early-warning", "version": 7, "payload": WARNING},
            "/version",
            "known versions: 1",
        ),
    ],
)
def test_unknown_type_or_version_names_the_known_ones(
    client: TestClient, village: dict[str, str], body: dict[str, Any], pointer: str, fragment: str
) -> None:
    response = submit(client, village, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_report_type"
    assert error["details"][0]["pointer"] == pointer
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ({"type": "village-early-warning"}, 422, "/payload"),
        (
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": [1]},
            422,
            "/payload",
        ),
        (
            {
                "type": "village-early-warning",
                "allow_no_recipient": True,
                "payload": WARNING,
                "tlp": "PURPLE",
            },
            422,
            "/tlp",
        ),
        (
            {
                "type": "village-early-warning",
                "allow_no_recipient": True,
                "payload": WARNING,
                "refs": ["x"],
            },
            422,
            "/refs/0",
        ),
        (
            {
                "type": "village-early-warning",
                "allow_no_recipient": True,
                "payload": WARNING,
                "extra": 1,
            },
            422,
            "/extra",
        ),
    ],
)
def test_malformed_submissions(
    client: TestClient, village: dict[str, str], body: dict[str, Any], status: int, pointer: str
) -> None:
    response = submit(client, village, body)
    assert response.status_code == status
    assert pointer in [d["pointer"] for d in response.json()["error"]["details"]]


def test_bad_json_and_missing_scope(client: TestClient, hub: Hub, village: dict[str, str]) -> None:
    bad = client.post(
        "/v1/reports", content=b'{"type": ', headers={**village, "Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    receiver = bearer(issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police))
    assert (
        submit(
            client,
            receiver,
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
        ).status_code
        == 403
    )
    assert (
        submit(
            client,
            {},
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
        ).status_code
        == 401
    )


def test_refs_must_name_existing_reports(client: TestClient, village: dict[str, str]) -> None:
    response = submit(
        client,
        village,
        {
            "type": "village-early-warning",
            "allow_no_recipient": True,
            "payload": WARNING,
            "refs": ["0" * 32],
        },
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["pointer"] == "/refs/0"


def test_another_agency_cannot_read_a_report(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    report_id = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
    ).json()["id"]
    other = bearer(issue_key(hub, "dinsos-banten", [Scope.receive], kind=AgencyKind.social))
    response = client.get(f"/v1/reports/{report_id}", headers=other)
    assert response.status_code == 404
    assert client.get(f"/v1/reports/{'f' * 32}", headers=village).status_code == 404


# --- the region directory ------------------------------------------------------------------


def test_without_a_directory_only_the_format_is_checked(
    client: TestClient, village: dict[str, str]
) -> None:
    payload = {**WARNING, "village_code": "36.03.11.9999"}
    assert (
        submit(
            client,
            village,
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": payload},
        ).status_code
        == 202
    )


def test_unknown_codes_are_rejected_naming_the_nearest_parent(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    load_banten(hub)
    payload = {**WARNING, "village_code": "36.03.11.9999"}
    response = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": payload},
    )
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["pointer"] == "/payload/village_code"
    assert "nearest existing one is 36.03.11" in detail["message"]
    assert (
        submit(
            client,
            village,
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
        ).status_code
        == 202
    )


def test_a_nik_from_an_unknown_district_is_a_warning(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    load_banten(hub)
    people = [{**WARNING["persons_at_risk"]["people"][0], "nik": "3699994505950001"}]
    payload = {**WARNING, "persons_at_risk": {"count": 1, "people": people}}
    response = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": payload},
    )
    assert response.status_code == 202
    assert response.json()["warnings"][0] == {
        "code": "nik_district_unknown",
        "pointer": "/payload/persons_at_risk/people/0/nik",
        "message": "The NIK's district 36.99.99 is not in the region directory.",
    }
    assert [w["code"] for w in response.json()["warnings"]] == [
        "nik_district_unknown",
        "no_recipient",
    ]


# --- idempotency ------------------------------------------------------------------------------


def test_idempotent_replay_and_conflict(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    first = submit(client, village, body, **{"Idempotency-Key": "abc-1"})
    again = submit(client, village, body, **{"Idempotency-Key": "abc-1"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count(hub, Report) == 1
    changed = submit(client, village, {**body, "tlp": "RED"}, **{"Idempotency-Key": "abc-1"})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_conflict"
    other = bearer(issue_key(hub, "pimpasa-other", [Scope.submit], kind=AgencyKind.village))
    assert (
        submit(client, other, body, **{"Idempotency-Key": "abc-1"}).status_code == 202
    )  # keys are per agency


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app on a real socket, for requests that must really run at the same time."""
    with serving(app) as url:
        yield url


def test_concurrent_requests_with_one_key_store_one_report(live_server: str, hub: Hub) -> None:
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    headers = {**bearer(token), "Idempotency-Key": "race-1"}
    body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}

    def send(_: int) -> httpx.Response:
        return httpx.post(f"{live_server}/v1/reports", json=body, headers=headers, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, range(8)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert count(hub, Report) == 1


# --- signatures --------------------------------------------------------------------------------


@pytest.fixture
def signer(hub: Hub) -> Ed25519PrivateKey:
    issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    return signing_key(hub, "pimpasa-tanjakan-mekar")


def signature_header(key: Ed25519PrivateKey, payload: Any) -> str:
    key_id = jwk_thumbprint(raw_public_bytes(key.public_key()))
    return f'keyid="{key_id}", sig="{b64url(key.sign(rfc8785.dumps(payload)))}"'


def test_a_signed_report_is_accepted_and_attributed(
    client: TestClient, hub: Hub, village: dict[str, str], signer: Ed25519PrivateKey
) -> None:
    response = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
        **{"Exchange-Signature": signature_header(signer, WARNING)},
    )
    assert response.status_code == 202, response.text
    with hub.session() as session:
        report = session.get(Report, response.json()["id"])
    assert report is not None
    assert report.signature_key_id == jwk_thumbprint(raw_public_bytes(signer.public_key()))


@pytest.mark.parametrize(
    "case", ["wrong-payload", "unknown-key", "malformed", "missing-when-required"]
)
def test_bad_signatures_are_401(
    client: TestClient, hub: Hub, village: dict[str, str], signer: Ed25519PrivateKey, case: str
) -> None:
    headers: dict[str, str] = {}
    if case == "wrong-payload":
        headers["Exchange-Signature"] = signature_header(signer, {**WARNING, "severity": "low"})
    elif case == "unknown-key":
        headers["Exchange-Signature"] = signature_header(Ed25519PrivateKey.generate(), WARNING)
    elif case == "malformed":
        headers["Exchange-Signature"] = "sig=abc"
    else:
        with hub.session() as session:
            agencies.update_agency(
                session, "pimpasa-tanjakan-mekar", require_signed_reports=True, actor="test"
            )
    response = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
        **headers,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_invalid"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-language"] == "en"
    assert count(hub, Report) == 0


def test_signature_is_over_the_canonical_payload_not_the_bytes_sent(
    client: TestClient, village: dict[str, str], signer: Ed25519PrivateKey
) -> None:
    reordered = dict(reversed(list(WARNING.items())))  # same JSON value, other key order
    response = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": reordered},
        **{"Exchange-Signature": signature_header(signer, WARNING)},
    )
    assert response.status_code == 202


def test_signature_header_parsing_rejects_short_signatures() -> None:
    from exchange.reports.service import SignatureInvalid, parse_signature_header

    with pytest.raises(SignatureInvalid):
        parse_signature_header(f'keyid="k", sig="{base64.urlsafe_b64encode(b"short").decode()}"')


def test_a_reports_evidence_verifies_offline(
    client: TestClient, hub: Hub, village: dict[str, str]
) -> None:
    from exchange.audit.notes import Verifier
    from exchange.audit.service import integrate
    from exchange.audit.verify import verify_evidence

    report_id = submit(
        client,
        village,
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
    ).json()["id"]
    client.get(f"/v1/reports/{report_id}", headers=village)  # a read, also logged
    with hub.session() as session:
        integrate(session, keyring=hub.keyring)
    auditor = bearer(issue_key(hub, "inspektorat", [Scope.audit]))
    assert client.get(f"/v1/reports/{report_id}/evidence", headers=village).status_code == 403
    assert client.get(f"/v1/reports/{'0' * 32}/evidence", headers=auditor).status_code == 404
    bundle = client.get(f"/v1/reports/{report_id}/evidence", headers=auditor).json()
    events = verify_evidence(bundle, log_key=Verifier.parse(hub.keyring.log_verifier_key())).proven
    assert [e["action"] for e in events] == ["report.submitted", "report.routed", "report.read"]


def accepting(hub: Hub, token: str, body: dict[str, Any], key: str, *, then: Any = None) -> Any:
    """A unit of work for a group writer: ``body`` submitted under Idempotency-Key ``key``,
    as the endpoint submits it; ``then()`` runs inside the transaction once it is accepted."""

    with hub.session() as session:  # (the endpoint authenticates before the unit too)
        principal = agencies.authenticate(session, token=token, directory_version=None)

    def work(session: Any) -> service.Outcome:
        outcome = service.accept(
            session,
            sender=agencies.kept_agency(session, principal.agency_id),
            principal=principal,
            registry=hub.registry,
            keyring=hub.keyring,
            submission=ReportSubmission.model_validate(body),
            idempotency_key=key,
            signature_header=None,
            submissions=hub.submissions,
            rejections=hub.rejections,
            locale="en",
        )
        if then is not None:
            then()
        return outcome

    return work


def test_one_key_twice_in_one_group_stores_one_report(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """The second finds the first's answer among the rows the group holds, not yet written
    (not by the database refusing a second answer and the group running again)."""
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    writer = GroupWriter(hub.session, capacity=10)
    try:
        first, second = one_group(
            writer, [accepting(hub, token, body, "twice"), accepting(hub, token, body, "twice")]
        )
    finally:
        writer.close()
    assert (first.status, first.replayed, second.status, second.replayed) == (202, False, 202, True)
    assert second.document == first.document
    assert count(hub, Report) == 1
    assert not [r for r in caplog.records if r.name == "exchange.writer"]


@pytest.fixture
def other_process(settings: Settings) -> Iterator[Hub]:
    """A second API process on the same database (without worker threads)."""
    app = create_app(settings)
    with TestClient(app):
        yield app.state.hub


def test_one_key_from_two_processes_at_once_stores_one_report(
    client: TestClient, hub: Hub, other_process: Hub
) -> None:
    """Another process holds the key in its open transaction, its answer stored but not
    committed: this one waits for it, then answers as it did. On PostgreSQL the test sees
    it wait for the key's advisory lock; on SQLite the one writer at a time is what holds
    it back (its wait cannot be seen from outside: there the test may be a plain replay)."""
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        assert release.wait(30)

    unit = accepting(other_process, token, body, "both", then=hold)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        theirs = pool.submit(asyncio.run, other_process.writer.run(unit))
        assert inside.wait(30)
        headers = {**bearer(token), "Idempotency-Key": "both"}
        ours = pool.submit(client.post, "/v1/reports", json=body, headers=headers)
        if hub.database.backend == "postgresql":  # ours waits for their lock: see it wait
            assert waiting_for_an_advisory_lock(hub, ours)
        release.set()
        their_answer, our_answer = theirs.result(), ours.result()
    assert their_answer.status == 202
    assert not their_answer.replayed
    assert our_answer.status_code == 202, our_answer.text
    assert our_answer.headers["idempotent-replayed"] == "true"
    assert our_answer.json()["id"] == their_answer.document["id"]
    assert count(hub, Report) == 1


def waiting_for_an_advisory_lock(hub: Hub, request: concurrent.futures.Future[Any]) -> bool:
    """Whether a session of this database comes to wait for an advisory lock (within 30 s)
    while ``request`` is still under way."""
    waiting = text(
        "SELECT count(*) FROM pg_locks JOIN pg_database ON pg_database.oid = pg_locks.database"
        " WHERE locktype = 'advisory' AND NOT granted AND datname = current_database()"
    )
    deadline = time.monotonic() + 30
    while not request.done() and time.monotonic() < deadline:
        with hub.database.reading() as session:
            if session.execute(waiting).scalar_one():
                return not request.done()
        concurrent.futures.wait([request], timeout=0.05)  # (done: it did not wait)
    return False


def test_a_replay_of_a_committed_answer_waits_for_no_one(client: TestClient, hub: Hub) -> None:
    """Clients resend after a timeout: the stored answer is found without taking the key's
    turn, so a replay neither waits behind another transaction holding the key nor holds
    it (two groups replaying one key and storing another in opposite orders would
    deadlock). On PostgreSQL another session holds the key's lock meanwhile."""
    token = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    body = {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    headers = {**bearer(token), "Idempotency-Key": "resent"}
    first = client.post("/v1/reports", json=body, headers=headers)
    assert first.status_code == 202, first.text
    # The lock goes first on the way out: the pool waits for the request, which may wait for it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool, contextlib.ExitStack() as holding:
        if hub.database.backend == "postgresql":
            other = holding.enter_context(hub.database.engine.connect())
            lock = service.idempotency_lock("pimpasa-tanjakan-mekar", "resent")
            other.execute(text("SELECT pg_advisory_lock(:lock)"), {"lock": lock})
            holding.callback(
                other.execute, text("SELECT pg_advisory_unlock(:lock)"), {"lock": lock}
            )
        again = pool.submit(client.post, "/v1/reports", json=body, headers=headers)
        replay = again.result(timeout=30)  # (it would wait for the lock until released)
    assert replay.status_code == 202, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
