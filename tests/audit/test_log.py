"""The audit log on both databases: recording in the action's transaction, integration and
signed checkpoints, proofs over HTTP, export and independent verification, tamper drills,
witnesses and the single writer."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, text, update
from sqlmodel import Session, col, select

from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.audit import merkle
from exchange.audit.models import AuditEvent, AuditNode, Cosignature, SignedCheckpoint
from exchange.audit.notes import KeyType, Verifier, cosign, open_checkpoint, verifier_key
from exchange.audit.service import export_lines, integrate, record
from exchange.audit.verify import (
    TrustedState,
    VerificationFailed,
    verify_evidence,
    verify_export,
)
from exchange.audit.witness import cosign_latest
from exchange.crypto import b64url, raw_public_bytes
from exchange.errors import ExchangeError
from exchange.hub import Hub
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.servers import PostgresServer, wait_until


@pytest.fixture
def quiet_settings(settings: Settings) -> Settings:
    """No ticker in the way: these tests integrate by hand, when they choose."""
    return settings.model_copy(update={"audit_interval_s": 60})


@pytest.fixture
def log_hub(quiet_settings: Settings) -> Iterator[Hub]:
    hub = Hub.start(quiet_settings)
    yield hub
    hub.close()


def log_key(hub: Hub) -> Verifier:
    return Verifier.parse(hub.keyring.log_verifier_key())


def add_agencies(hub: Hub, count: int, prefix: str = "agency") -> None:
    with hub.session() as session:
        for n in range(count):
            agencies.create_agency(
                session,
                agency_id=f"{prefix}-{n:03d}",
                name=f"Agency {n}",
                kind=AgencyKind.other,
                jurisdiction="36",
                actor="test",
            )


def integrate_now(hub: Hub, batch_size: int = 20_000) -> SignedCheckpoint | None:
    with hub.session() as session:
        return integrate(session, keyring=hub.keyring, batch_size=batch_size)


def export(hub: Hub) -> list[bytes]:
    with hub.session() as session:
        return [orjson.dumps(record) for record in export_lines(session)]


def verify(hub: Hub, **options: Any) -> Any:
    return verify_export(export(hub), log_key=log_key(hub), **options)


def all_leaves(session: Session) -> list[bytes]:
    rows = session.exec(select(AuditEvent.canonical).order_by(col(AuditEvent.leaf_index))).all()
    return [merkle.leaf_hash(c) for c in rows]


def test_first_integration_signs_the_empty_tree(log_hub: Hub) -> None:
    checkpoint = integrate_now(log_hub)
    assert checkpoint is not None
    assert (checkpoint.size, checkpoint.root_hash) == (0, merkle.EMPTY_ROOT)
    assert integrate_now(log_hub) is None  # nothing new: no new checkpoint


def test_integration_appends_and_signs_a_verifiable_checkpoint(log_hub: Hub) -> None:
    add_agencies(log_hub, 5)
    checkpoint = integrate_now(log_hub)
    assert checkpoint is not None
    assert checkpoint.size == 5
    opened, _ = open_checkpoint(checkpoint.note, log_key(log_hub))
    with log_hub.session() as session:
        leaves = all_leaves(session)
        actions = session.exec(select(AuditEvent.action)).all()
    assert set(actions) == {"agency.created"}
    compact = merkle.CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    assert opened.root_hash == compact.root() == checkpoint.root_hash


def test_events_exist_only_if_the_action_commits(log_hub: Hub) -> None:
    add_agencies(log_hub, 1)
    with pytest.raises(ExchangeError), log_hub.session() as session:
        agencies.create_agency(
            session,
            agency_id="agency-000",
            name="again",
            kind=AgencyKind.other,
            jurisdiction="36",
            actor="test",
        )

    def record_then_fail() -> None:
        with log_hub.session() as session:
            record(session, action="probe.test", subject="x", actor="test")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        record_then_fail()
    with log_hub.session() as session:
        assert len(session.exec(select(AuditEvent)).all()) == 1


def test_batches_chain_into_consistent_checkpoints(log_hub: Hub) -> None:
    add_agencies(log_hub, 11)
    sizes = []
    while (checkpoint := integrate_now(log_hub, batch_size=4)) is not None:
        sizes.append(checkpoint.size)
    assert sizes == [4, 8, 11]
    result = verify(log_hub)
    assert (result.checkpoint.size, result.checkpoints_checked) == (11, 3)


def test_events_hold_no_secrets(log_hub: Hub) -> None:
    with log_hub.session() as session:
        agencies.create_agency(
            session,
            agency_id="polda-banten",
            name="Polda",
            kind=AgencyKind.police,
            jurisdiction="36",
            actor="test",
        )
        issued = agencies.create_api_key(
            session, agency_id="polda-banten", scopes=[Scope.receive], actor="test"
        )
    with log_hub.session() as session:
        logged = b"".join(session.exec(select(AuditEvent.canonical)).all())
    secret = issued.token.split("_", 2)[2]
    assert secret.encode() not in logged
    assert issued.key.secret_hash.encode() not in logged
    assert issued.key.id.encode() in logged


# --- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def audit_app(quiet_settings: Settings) -> FastAPI:
    return create_app(quiet_settings)


@pytest.fixture
def audit_client(audit_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(audit_app) as client:
        yield client


@pytest.fixture
def auditor(audit_app: FastAPI) -> dict[str, str]:
    return bearer(issue_key(audit_app.state.hub, "inspektorat", [Scope.audit]))


def test_checkpoint_needs_a_key_and_events_need_the_audit_scope(
    audit_app: FastAPI, audit_client: TestClient, auditor: dict[str, str]
) -> None:
    hub: Hub = audit_app.state.hub
    integrate_now(hub)
    submitter = bearer(issue_key(hub, "polda-banten", [Scope.submit]))
    assert audit_client.get("/v1/audit/checkpoint").status_code == 401
    note = audit_client.get("/v1/audit/checkpoint", headers=submitter)
    assert note.status_code == 200
    assert note.headers["content-type"].startswith("text/plain")
    assert audit_client.get("/v1/audit/events", headers=submitter).status_code == 403
    assert audit_client.get("/v1/audit/events", headers=auditor).status_code == 200


def test_proofs_over_http_verify_against_the_signed_root(
    audit_app: FastAPI, audit_client: TestClient, auditor: dict[str, str]
) -> None:
    hub: Hub = audit_app.state.hub
    add_agencies(hub, 3)
    first = integrate_now(hub)
    add_agencies(hub, 6, prefix="later")
    integrate_now(hub)
    assert first is not None
    note = audit_client.get("/v1/audit/checkpoint", headers=auditor).text
    checkpoint, _ = open_checkpoint(note, log_key(hub))
    # Every event so far: 3 + 6 agencies, the auditor and its key, one announcement of each
    # version of each schema (six types, two versions).
    with hub.session() as session:
        recorded = len(session.exec(select(AuditEvent)).all())
    assert checkpoint.size == recorded == 3 + 6 + 2 + 12

    listed = audit_client.get(
        "/v1/audit/events", params={"start": 0, "end": 100}, headers=auditor
    ).json()
    assert [e["index"] for e in listed] == list(range(checkpoint.size))
    for entry in listed:
        leaf = merkle.leaf_hash(base64.b64decode(entry["event"]))
        assert base64.b64decode(entry["leaf_hash"]) == leaf
        proof = audit_client.get(
            "/v1/audit/proof/inclusion", params={"event_id": entry["id"]}, headers=auditor
        ).json()
        merkle.verify_inclusion(
            entry["index"],
            checkpoint.size,
            leaf,
            [base64.b64decode(h) for h in proof["proof"]],
            checkpoint.root_hash,
        )

    consistency = audit_client.get(
        "/v1/audit/proof/consistency", params={"from": first.size}, headers=auditor
    ).json()
    merkle.verify_consistency(
        first.size,
        checkpoint.size,
        first.root_hash,
        checkpoint.root_hash,
        [base64.b64decode(h) for h in consistency["proof"]],
    )


@pytest.mark.parametrize(
    ("path", "params", "pointer"),
    [
        ("/v1/audit/proof/inclusion", {"index": 99}, "/index"),
        ("/v1/audit/proof/inclusion", {"index": 0, "size": 99}, "/size"),
        ("/v1/audit/proof/consistency", {"from": 99}, "/from"),
        ("/v1/audit/events", {"start": 5, "end": 2}, "/end"),
    ],
)
def test_out_of_range_requests_are_422_with_pointer(
    audit_app: FastAPI,
    audit_client: TestClient,
    auditor: dict[str, str],
    path: str,
    params: dict[str, int],
    pointer: str,
) -> None:
    add_agencies(audit_app.state.hub, 2)
    integrate_now(audit_app.state.hub)
    response = audit_client.get(path, params=params, headers=auditor)
    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert (detail["in"], detail["pointer"]) == ("query", pointer)


def test_evidence_verifies_with_only_the_published_key(
    audit_app: FastAPI, audit_client: TestClient, auditor: dict[str, str], tmp_path: Path
) -> None:
    hub: Hub = audit_app.state.hub
    add_agencies(hub, 4)
    with hub.session() as session:
        agencies.update_agency(session, "agency-002", active=False, actor="test")
    integrate_now(hub)
    bundle = audit_client.get(
        "/v1/audit/evidence", params={"subject": "agency:agency-002"}, headers=auditor
    ).json()
    published = audit_client.get("/.well-known/exchange/keys").json()
    vkey = next(k["note_verifier_key"] for k in published["keys"] if k["use"] == "checkpoint")
    # A round trip through a file: the bundle alone, no hub, no database.
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    events = verify_evidence(
        json.loads((tmp_path / "bundle.json").read_text()), log_key=Verifier.parse(vkey)
    ).proven
    assert [e["action"] for e in events] == ["agency.created", "agency.updated"]
    assert events[1]["details"] == {"changed": {"active": False}}

    forged = json.loads(json.dumps(bundle))
    forged["events"][1]["event"] = base64.b64encode(
        base64.b64decode(forged["events"][1]["event"]).replace(b"false", b"true ")
    ).decode()
    with pytest.raises(VerificationFailed, match="not in the signed log") as failure:
        verify_evidence(forged, log_key=Verifier.parse(vkey))
    assert failure.value.index == bundle["events"][1]["index"]


def test_the_in_process_ticker_integrates_within_a_second(
    client: TestClient, admin_token: str
) -> None:
    auditor = bearer(issue_key(client.app.state.hub, "inspektorat", [Scope.audit]))  # type: ignore[attr-defined]

    def signed_size() -> int:
        response = client.get("/v1/audit/checkpoint", headers=auditor)
        return int(response.text.split("\n")[1]) if response.status_code == 200 else -1

    wait_until(lambda: signed_size() >= 2, what="the first events integrated", deadline_s=5)
    before = signed_size()
    created = client.post(
        "/v1/agencies",
        json={"id": "polres-serang", "name": "Polres", "kind": "police", "jurisdiction": "36.04"},
        headers=bearer(admin_token),
    )
    assert created.status_code == 201
    wait_until(lambda: signed_size() > before, what="the new event signed", deadline_s=5)


# --- export, verification and tamper drills -----------------------------------------------


@pytest.fixture
def logged_hub(log_hub: Hub) -> Hub:
    """Twelve events in three checkpoints (4, 8, 12)."""
    add_agencies(log_hub, 12)
    while integrate_now(log_hub, batch_size=4) is not None:
        pass
    return log_hub


def test_a_clean_log_verifies(logged_hub: Hub) -> None:
    result = verify(logged_hub)
    assert result.checkpoint.size == 12
    assert result.checkpoints_checked == 3


def run_sql(hub: Hub, statement: Any) -> None:
    with hub.session() as session:
        session.execute(statement)


def test_drill_event_bytes_edited(logged_hub: Hub) -> None:
    with logged_hub.session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.leaf_index == 6)).one()
        forged = event.canonical.replace(b"agency-", b"agensi-")
        assert forged != event.canonical
    run_sql(
        logged_hub,
        update(AuditEvent).where(col(AuditEvent.leaf_index) == 6).values(canonical=forged),
    )
    with pytest.raises(VerificationFailed, match="do not hash to its logged leaf") as failure:
        verify(logged_hub)
    assert failure.value.index == 6


def test_drill_event_deleted(logged_hub: Hub) -> None:
    run_sql(logged_hub, delete(AuditEvent).where(col(AuditEvent.leaf_index) == 4))
    with pytest.raises(VerificationFailed, match="missing") as failure:
        verify(logged_hub)
    assert failure.value.index == 4


def test_drill_event_inserted(logged_hub: Hub) -> None:
    # Make room at leaf 5 by moving every later event up one, then slip a forged event in.
    with logged_hub.session() as session:
        for index in range(11, 4, -1):
            session.execute(
                update(AuditEvent)
                .where(col(AuditEvent.leaf_index) == index)
                .values(leaf_index=index + 1)
            )
        forged = record(session, action="agency.created", subject="agency:ghost", actor="test")
        session.execute(update(AuditEvent).where(col(AuditEvent.id) == forged).values(leaf_index=5))
    with pytest.raises(VerificationFailed) as failure:
        verify(logged_hub)
    assert failure.value.index == 5


def test_drill_two_events_swapped(logged_hub: Hub) -> None:
    with logged_hub.session() as session:
        session.execute(
            update(AuditEvent).where(col(AuditEvent.leaf_index) == 3).values(leaf_index=-1)
        )
        session.execute(
            update(AuditEvent).where(col(AuditEvent.leaf_index) == 9).values(leaf_index=3)
        )
        session.execute(
            update(AuditEvent).where(col(AuditEvent.leaf_index) == -1).values(leaf_index=9)
        )
    with pytest.raises(VerificationFailed, match="logged leaf") as failure:
        verify(logged_hub)
    assert failure.value.index == 3


def test_drill_leaf_and_tree_rewritten_is_caught_by_the_signature(logged_hub: Hub) -> None:
    """An attacker who also rewrites the stored leaf hash is caught by the signed root."""
    with logged_hub.session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.leaf_index == 9)).one()
        forged = event.canonical.replace(b"agency-", b"agensi-")
        assert forged != event.canonical
        session.execute(
            update(AuditEvent).where(col(AuditEvent.leaf_index) == 9).values(canonical=forged)
        )
        session.execute(
            update(AuditNode)
            .where(col(AuditNode.level) == 0, col(AuditNode.index) == 9)
            .values(hash=merkle.leaf_hash(forged))
        )
    with pytest.raises(VerificationFailed, match="does not match its signed checkpoint") as failure:
        verify(logged_hub)
    assert failure.value.index == 8  # the first leaf after the last checkpoint that held


def trusted_state(hub: Hub) -> TrustedState:
    result = verify(hub)
    return TrustedState(
        size=result.checkpoint.size, root_hash=result.checkpoint.root_hash, note=result.note
    )


def test_drill_checkpoint_rolled_back(logged_hub: Hub) -> None:
    seen = trusted_state(logged_hub)
    run_sql(logged_hub, delete(SignedCheckpoint).where(col(SignedCheckpoint.size) > 8))
    with pytest.raises(VerificationFailed, match="rolled back"):
        verify(logged_hub, state=seen)
    verify(logged_hub)  # without the auditor's memory, the shorter log looks fine


def test_drill_forked_checkpoint_signed_with_the_right_key(logged_hub: Hub) -> None:
    seen = trusted_state(logged_hub)
    # Whoever holds the hub's key rewrites history from leaf 2 on and re-signs it all.
    with logged_hub.session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.leaf_index == 2)).one()
        forged = event.canonical.replace(b"agency-", b"agensi-")
        assert forged != event.canonical
        session.execute(delete(SignedCheckpoint))
        session.execute(delete(AuditNode))
        session.execute(update(AuditEvent).values(leaf_index=None))
        session.execute(
            update(AuditEvent).where(col(AuditEvent.id) == event.id).values(canonical=forged)
        )
    add_agencies(logged_hub, 2, prefix="after-fork")
    assert integrate_now(logged_hub) is not None
    assert verify(logged_hub).checkpoint.size == 14  # consistent with itself...
    with pytest.raises(VerificationFailed, match="checkpoint seen before") as failure:
        verify(logged_hub, state=seen)  # ...but not with what the auditor saw
    assert failure.value.index == 0


# --- witnesses ------------------------------------------------------------------------------


def witness_setup(hub: Hub, name: str) -> tuple[Ed25519PrivateKey, Verifier, str]:
    key = Ed25519PrivateKey.generate()
    raw = raw_public_bytes(key.public_key())
    token = issue_key(hub, f"witness-{name}", [Scope.audit])
    with hub.session() as session:
        agencies.add_signing_key(
            session, agency_id=f"witness-{name}", public_key=b64url(raw), actor="test"
        )
    witness = Verifier.parse(verifier_key(f"{name}.test/w", KeyType.cosignature_v1, raw))
    return key, witness, token


def test_witnesses_cosign_and_auditors_require_a_quorum(
    audit_app: FastAPI, audit_client: TestClient, tmp_path: Path
) -> None:
    hub: Hub = audit_app.state.hub
    bp3mi_key, bp3mi, bp3mi_token = witness_setup(hub, "bp3mi")
    polda_key, polda, polda_token = witness_setup(hub, "polda")
    add_agencies(hub, 3)
    integrate_now(hub)

    for key, witness, token in ((bp3mi_key, bp3mi, bp3mi_token), (polda_key, polda, polda_token)):
        audit_client.headers["Authorization"] = f"Bearer {token}"
        cosigned = cosign_latest(
            audit_client,
            log_key=log_key(hub),
            name=witness.name,
            key=key,
            state_path=tmp_path / f"{witness.name.split('.')[0]}.json",
        )
    note = audit_client.get("/v1/audit/checkpoint").text
    assert note.count("\u2014 ") == 3  # the log and two witnesses
    result = verify(hub, witnesses=[bp3mi, polda], quorum=2)
    assert sorted(result.cosigned_by) == sorted([bp3mi.name, polda.name])
    assert result.checkpoint.size == cosigned.size
    other = Ed25519PrivateKey.generate()
    stranger = Verifier.parse(
        verifier_key(
            "stranger.test/w", KeyType.cosignature_v1, raw_public_bytes(other.public_key())
        )
    )
    with pytest.raises(VerificationFailed, match=r"1 valid witness cosignature\(s\) required"):
        verify(hub, witnesses=[stranger], quorum=1)


def test_a_witness_refuses_a_forked_log(
    audit_app: FastAPI, audit_client: TestClient, tmp_path: Path
) -> None:
    hub: Hub = audit_app.state.hub
    key, witness, token = witness_setup(hub, "bp3mi")
    add_agencies(hub, 4)
    integrate_now(hub)
    audit_client.headers["Authorization"] = f"Bearer {token}"
    state = tmp_path / "witness.json"
    cosign_latest(audit_client, log_key=log_key(hub), name=witness.name, key=key, state_path=state)
    before = TrustedState.load(state)
    assert before is not None

    with hub.session() as session:  # history rewritten and re-signed with the hub's key
        session.execute(delete(Cosignature))
        session.execute(delete(SignedCheckpoint))
        session.execute(delete(AuditNode))
        session.execute(update(AuditEvent).values(leaf_index=None))
        session.execute(
            update(AuditEvent).where(col(AuditEvent.seq) == 1).values(canonical=b'{"forged":1}')
        )
    add_agencies(hub, 1, prefix="after-fork")
    integrate_now(hub)
    with pytest.raises(VerificationFailed, match="fork"):
        cosign_latest(
            audit_client, log_key=log_key(hub), name=witness.name, key=key, state_path=state
        )
    assert TrustedState.load(state) == before  # nothing cosigned, state unchanged


def test_a_cosignature_by_an_unregistered_key_is_refused(
    audit_app: FastAPI, audit_client: TestClient
) -> None:
    hub: Hub = audit_app.state.hub
    integrate_now(hub)
    token = issue_key(hub, "witness-unknown", [Scope.audit])
    note = audit_client.get("/v1/audit/checkpoint", headers=bearer(token)).text
    checkpoint, opened = open_checkpoint(note, log_key(hub))
    line = cosign(opened.body, "unknown.test/w", Ed25519PrivateKey.generate(), timestamp=1)
    response = audit_client.post(
        "/v1/audit/cosignatures",
        json={"size": checkpoint.size, "signature": line.text()},
        headers=bearer(token),
    )
    assert response.status_code == 403


def test_a_witness_name_stays_bound_to_the_key_that_first_cosigned(
    audit_app: FastAPI, audit_client: TestClient
) -> None:
    """Another witness agency (or the same agency with another key) cannot replace a
    witness's cosignature by cosigning under its name."""
    hub: Hub = audit_app.state.hub
    bp3mi_key, bp3mi, bp3mi_token = witness_setup(hub, "bp3mi")
    polda_key, _polda, polda_token = witness_setup(hub, "polda")
    integrate_now(hub)
    note = audit_client.get("/v1/audit/checkpoint", headers=bearer(bp3mi_token)).text
    checkpoint, opened = open_checkpoint(note, log_key(hub))

    def post(token: str, key: Ed25519PrivateKey, timestamp: int) -> int:
        line = cosign(opened.body, bp3mi.name, key, timestamp=timestamp)
        return audit_client.post(
            "/v1/audit/cosignatures",
            json={"size": checkpoint.size, "signature": line.text()},
            headers=bearer(token),
        ).status_code

    assert post(bp3mi_token, bp3mi_key, timestamp=100) == 201
    assert post(polda_token, polda_key, timestamp=200) == 409  # another agency's key
    second_key = Ed25519PrivateKey.generate()
    with hub.session() as session:
        agencies.add_signing_key(
            session,
            agency_id="witness-bp3mi",
            public_key=b64url(raw_public_bytes(second_key.public_key())),
            actor="test",
        )
    assert post(bp3mi_token, second_key, timestamp=300) == 409  # the same agency, another key
    assert post(bp3mi_token, bp3mi_key, timestamp=400) == 201  # the witness itself, again
    result = verify(hub, witnesses=[bp3mi], quorum=1)
    assert result.cosigned_by == [bp3mi.name]


# --- the single writer -----------------------------------------------------------------------


@pytest.mark.postgres
def test_only_one_integrator_at_a_time_on_postgres(
    postgres: PostgresServer, postgres_template: str, tmp_path: Path
) -> None:
    url = postgres.create_database(
        f"writer_{tmp_path.name[-12:].lower()}", template=postgres_template
    )
    settings = Settings(
        database_url=url, key_dir=tmp_path / "keys", log_json=False, audit_interval_s=60
    )
    hub = Hub.start(settings)
    try:
        add_agencies(hub, 5)
        with hub.session() as holder:
            holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x45584348_4C4F47})
            assert integrate_now(hub) is None  # another writer holds the log
        assert integrate_now(hub) is not None

        # Many integrators racing over fresh events: every leaf index given exactly once.
        add_agencies(hub, 40, prefix="race")
        threads = [threading.Thread(target=integrate_now, args=(hub, 7)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        while integrate_now(hub) is not None:
            pass
        assert verify(hub).checkpoint.size == 45
    finally:
        hub.close()
