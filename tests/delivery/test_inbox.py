"""The pull inbox (leases, cursors, acknowledgement) and signed receipts."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_structured_event
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dramatiq import Message
from exchange_verify import Failed
from exchange_verify.evidence import verify_evidence as standalone_evidence
from exchange_verify.notes import ED25519, Key
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope, SigningKey
from exchange.app import create_app
from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.audit.notes import Verifier
from exchange.audit.service import integrate
from exchange.audit.verify import VerificationFailed, check_evidence, verify_evidence
from exchange.cli import app as cli
from exchange.crypto import b64url, raw_public_bytes, receipt_message
from exchange.delivery.models import SEND_ACTOR, Delivery, DeliveryState
from exchange.hub import Hub
from exchange.models import utcnow
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import (
    WARNING,
    deliveries,
    fast_settings,
    settle,
    submit,
    subscribe,
)


def delivered(hub: Hub, count: int) -> None:
    settle(hub, DeliveryState.delivered, count=count)


def expire_leases(hub: Hub) -> None:
    """As if the lease time had passed."""
    with hub.session() as session:
        for delivery in session.exec(select(Delivery)):
            if delivery.due_at is not None:
                delivery.due_at = utcnow() - timedelta(seconds=1)
                session.add(delivery)


def test_inbox_leases_pages_and_acknowledges(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    jatim: dict[str, str],
) -> None:
    subscribe(client, polda, config={"lease_s": 60})
    subscribe(client, jatim)
    sent = [submit(client, village, tlp="GREEN") for _ in range(3)]
    delivered(hub, 6)

    first = client.get("/v1/inbox?limit=2", headers=polda).json()
    assert len(first["items"]) == 2
    rest = client.get(f"/v1/inbox?after={first['next_cursor']}", headers=polda).json()
    assert len(rest["items"]) == 1
    items = first["items"] + rest["items"]
    events = [
        from_structured_event(
            HTTPMessage(
                headers={"content-type": "application/cloudevents+json"},
                body=orjson.dumps(item["envelope"]),
            )
        )
        for item in items
    ]
    assert sorted(e.get_subject() for e in events) == sorted(sent)
    assert all(item["delivery_id"] == e.get_id() for item, e in zip(items, events, strict=True))
    assert client.get("/v1/inbox", headers=polda).json()["items"] == []  # all leased

    acked = client.post(
        "/v1/inbox/ack",
        json={"ids": [items[0]["delivery_id"], items[1]["delivery_id"]]},
        headers=polda,
    )
    assert acked.status_code == 200
    expire_leases(hub)
    again = client.get("/v1/inbox", headers=polda).json()["items"]
    assert [i["delivery_id"] for i in again] == [items[2]["delivery_id"]]  # the unacked one

    # jatim's inbox is its own, and it cannot acknowledge polda's envelopes
    theirs = client.get("/v1/inbox", headers=jatim).json()["items"]
    assert {i["delivery_id"] for i in theirs}.isdisjoint(i["delivery_id"] for i in items)
    stolen = client.post("/v1/inbox/ack", json={"ids": [items[2]["delivery_id"]]}, headers=jatim)
    assert stolen.status_code == 404
    someone_elses = items[2]["delivery_id"]
    assert client.get(f"/v1/deliveries/{someone_elses}", headers=jatim).status_code == 404
    assert client.post(f"/v1/deliveries/{someone_elses}/replay", headers=jatim).status_code == 404
    assert client.post(f"/v1/deliveries/{someone_elses}/ack", headers=jatim).status_code == 404
    assert someone_elses not in {
        d["id"] for d in client.get("/v1/deliveries", headers=jatim).json()
    }
    with hub.session() as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert actions.count("delivery.acknowledged") == 2
    assert "inbox.read" in actions


def test_bad_inbox_requests(client: TestClient, polda: dict[str, str]) -> None:
    bad_cursor = client.get("/v1/inbox?after=%%%", headers=polda)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["error"]["details"][0]["pointer"] == "/after"
    assert client.get("/v1/inbox?limit=0", headers=polda).status_code == 422
    assert client.post("/v1/inbox/ack", json={"ids": []}, headers=polda).status_code == 422
    assert client.get("/v1/inbox").status_code == 401


@dataclass(frozen=True)
class Delivered:
    """A report delivered to Polda's inbox, Polda holding a registered signing key."""

    private: Ed25519PrivateKey
    key_id: str
    report_id: str
    delivery_id: str
    data_hash: str


def polda_signing_key(hub: Hub) -> tuple[Ed25519PrivateKey, SigningKey]:
    """A signing key registered for the police, and its private half."""
    private = Ed25519PrivateKey.generate()
    with hub.session() as session:
        key = agencies.add_signing_key(
            session,
            agency_id="polda-banten",
            public_key=b64url(raw_public_bytes(private.public_key())),
            actor="test",
        )
    return private, key


def actors_sent(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The actor of every message the hub sends its broker from now on."""
    sent: list[str] = []
    enqueue = hub.broker.enqueue

    def recorded(message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        sent.append(message.actor_name)
        return enqueue(message, delay=delay)

    monkeypatch.setattr(hub.broker, "enqueue", recorded)
    return sent


def delivered_to_a_signing_recipient(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> Delivered:
    private, key = polda_signing_key(hub)
    subscribe(client, polda)
    report_id = submit(client, village)
    delivered(hub, 1)
    (item,) = client.get("/v1/inbox", headers=polda).json()["items"]
    return Delivered(private, key.id, report_id, item["delivery_id"], item["envelope"]["datahash"])


def test_a_signed_receipt_is_verified_and_kept(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    sent = delivered_to_a_signing_recipient(client, hub, village, polda)
    private, report_id = sent.private, sent.report_id
    delivery_id, data_hash = sent.delivery_id, sent.data_hash

    def ack(body: dict[str, str]) -> tuple[int, dict[str, object]]:
        response = client.post(f"/v1/deliveries/{delivery_id}/ack", json=body, headers=polda)
        return response.status_code, response.json()

    forged = b64url(private.sign(receipt_message(delivery_id, "0" * 64)))
    status, body = ack({"key_id": sent.key_id, "signature": forged})
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/signature"
    status, body = ack({"key_id": "nope", "signature": forged})
    assert (status, body["error"]["details"][0]["pointer"]) == (422, "/key_id")
    status, body = ack({"key_id": sent.key_id})
    assert (status, body["error"]["details"][0]["pointer"]) == (422, "/signature")

    signature = b64url(private.sign(receipt_message(delivery_id, data_hash)))
    status, body = ack({"key_id": sent.key_id, "signature": signature})
    assert status == 200
    assert body["state"] == "acknowledged"
    assert body["receipt_key_id"] == sent.key_id
    evidence_events = []
    with hub.session() as session:
        for event in session.exec(
            select(AuditEvent).where(AuditEvent.action == "delivery.acknowledged")
        ):
            evidence_events.append(orjson.loads(event.canonical))
    (receipt,) = evidence_events
    assert receipt["subject"] == f"report:{report_id}"
    assert receipt["details"]["receipt_signature"] == signature
    assert receipt["details"]["data_hash"] == data_hash


def test_an_inbox_delivery_is_in_the_inbox_as_routed_and_signed_for_once_read(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No worker touches an inbox delivery: it is delivered in the transaction that routed
    the report, with no message to the broker and no second envelope built. Its datahash
    is the one of the envelope the recipient read, so a receipt before the read is refused."""
    private, key = polda_signing_key(hub)
    subscribe(client, polda)
    sent = actors_sent(hub, monkeypatch)
    report_id = submit(client, village)
    assert SEND_ACTOR not in sent
    (delivery,) = deliveries(hub, report_id=report_id)
    assert (delivery.state, delivery.attempts, delivery.data_hash) == ("delivered", 1, None)
    assert delivery.delivered_at is not None

    unread = b64url(private.sign(receipt_message(delivery.id, "")))
    refused = client.post(
        f"/v1/deliveries/{delivery.id}/ack",
        json={"key_id": key.id, "signature": unread},
        headers=polda,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "delivery_state_conflict"

    (item,) = client.get("/v1/inbox", headers=polda).json()["items"]
    data_hash = item["envelope"]["datahash"]
    (read,) = deliveries(hub, report_id=report_id)
    assert read.data_hash == data_hash
    signature = b64url(private.sign(receipt_message(delivery.id, data_hash)))
    signed = client.post(
        f"/v1/deliveries/{delivery.id}/ack",
        json={"key_id": key.id, "signature": signature},
        headers=polda,
    )
    assert signed.status_code == 200, signed.text


def test_a_replayed_inbox_delivery_is_back_in_the_inbox_at_once(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replay puts an inbox delivery back where routing placed it, with no worker job; the
    next read hands it over again and the log records the data of what was read."""
    subscribe(client, polda)
    report_id = submit(client, village)
    (item,) = client.get("/v1/inbox", headers=polda).json()["items"]
    delivery_id = item["delivery_id"]
    acked = client.post("/v1/inbox/ack", json={"ids": [delivery_id]}, headers=polda)
    assert acked.status_code == 200
    assert client.get("/v1/inbox", headers=polda).json()["items"] == []

    sent = actors_sent(hub, monkeypatch)
    replayed = client.post(f"/v1/deliveries/{delivery_id}/replay", headers=polda)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["state"] == "delivered"
    assert SEND_ACTOR not in sent
    (again,) = client.get("/v1/inbox", headers=polda).json()["items"]
    assert again["delivery_id"] == delivery_id
    with hub.session() as session:
        reads = [
            orjson.loads(event.canonical)["details"]
            for event in session.exec(select(AuditEvent).where(AuditEvent.action == "inbox.read"))
        ]
    assert [read["data_hashes"] for read in reads] == [[item["envelope"]["datahash"]]] * 2
    assert deliveries(hub, report_id=report_id)[0].state == DeliveryState.delivered


def test_a_refused_bulk_line_keeps_the_jobs_of_the_lines_before_it(
    database_url: str, tmp_path: Path
) -> None:
    """A line refused inside its savepoint (here: an idempotency key and an invalid payload)
    must not drop the delivery job of a line accepted earlier in the same batch. The sweeper
    is slowed to its longest interval, so only that job can deliver within the wait."""
    app = create_app(fast_settings(database_url, tmp_path, sweep_interval_s=600))
    with TestClient(app) as client:
        hub: Hub = app.state.hub
        village = bearer(
            issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
        )
        polda = bearer(issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police))
        subscribe(client, polda)
        lines = [
            {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING},
            {
                "type": "village-early-warning",
                "allow_no_recipient": True,
                "payload": {},
                "idempotency_key": "bad-line",
            },
        ]
        response = client.post(
            "/v1/reports:bulk",
            content=b"".join(orjson.dumps(line) + b"\n" for line in lines),
            headers={**village, "Content-Type": "application/x-ndjson"},
        )
        assert [orjson.loads(r)["status"] for r in response.text.splitlines()] == [202, 422]
        hub.broker.join("delivery")
        assert [d.state for d in deliveries(hub)] == [DeliveryState.delivered]


def test_a_signed_receipt_verifies_offline_against_the_key_the_log_recorded(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    runner: CliRunner,
    tmp_path: Path,
) -> None:
    """An evidence bundle carries the recipient's key history from the log, so an auditor
    checks the receipt with nothing but the log's key; a receipt the hub made up, or one
    signed by a key revoked before it, fails."""
    sent = delivered_to_a_signing_recipient(client, hub, village, polda)
    private, report_id = sent.private, sent.report_id
    delivery_id, data_hash = sent.delivery_id, sent.data_hash
    signature = b64url(private.sign(receipt_message(delivery_id, data_hash)))
    acked = client.post(
        f"/v1/deliveries/{delivery_id}/ack",
        json={"key_id": sent.key_id, "signature": signature},
        headers=polda,
    )
    assert acked.status_code == 200
    auditor = bearer(issue_key(hub, "inspektorat", [Scope.audit]))
    log_key = Verifier.parse(hub.keyring.log_verifier_key())

    def bundle() -> dict[str, Any]:
        with hub.session() as session:
            integrate(session, keyring=hub.keyring)
        answer = client.get(f"/v1/reports/{report_id}/evidence", headers=auditor)
        assert answer.status_code == 200
        return dict(answer.json())

    def logged_receipt(receipt_signature: str) -> None:
        """An acknowledgement written straight into the log, as a subverted hub could."""
        with hub.session() as session:
            audit.record(
                session,
                action="delivery.acknowledged",
                subject=f"report:{report_id}",
                actor="hub",
                details={
                    "delivery": delivery_id,
                    "agency": "polda-banten",
                    "data_hash": data_hash,
                    "receipt_key_id": sent.key_id,
                    "receipt_signature": receipt_signature,
                },
            )

    genuine = bundle()
    assert [json.loads(base64.b64decode(e["event"]))["action"] for e in genuine["key_events"]] == [
        "signing_key.added"
    ]
    check = verify_evidence(genuine, log_key=log_key)
    assert [(r.agency, r.delivery, r.key_id) for r in check.receipts] == [
        ("polda-banten", delivery_id, sent.key_id)
    ]
    saved = tmp_path / "bundle.json"
    saved.write_text(json.dumps(genuine))
    result = runner.invoke(
        cli,
        [
            "audit",
            "verify-evidence",
            str(saved),
            "--log-key",
            hub.keyring.log_verifier_key(),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["receipts"][0]["delivery"] == delivery_id

    # The standalone verifier, sharing no code with the hub, says the same.
    standalone_key = Key.parse(hub.keyring.log_verifier_key(), key_type=ED25519)
    standalone = standalone_evidence(genuine, log=standalone_key)
    assert [(r["agency"], r["delivery"]) for r in standalone.receipts] == [
        ("polda-banten", delivery_id)
    ]
    assert [e["action"] for e in standalone.events] == [e["action"] for e in check.proven]

    without_history = {**genuine, "key_events": []}
    with pytest.raises(VerificationFailed, match="not in the key history"):
        verify_evidence(without_history, log_key=log_key)
    with pytest.raises(Failed, match="not in the key history"):
        standalone_evidence(without_history, log=standalone_key)

    # A hub that writes a receipt of its own making into the log: the log proves the
    # event, but the signature is not the recipient's.
    logged_receipt(
        b64url(Ed25519PrivateKey.generate().sign(receipt_message(delivery_id, data_hash)))
    )
    made_up = bundle()
    with pytest.raises(VerificationFailed, match="does not verify under key"):
        verify_evidence(made_up, log_key=log_key)
    with pytest.raises(Failed, match="does not verify under key"):
        standalone_evidence(made_up, log=standalone_key)

    # And one signed by the recipient's key after the log recorded its revocation.
    with hub.session() as session:
        agencies.revoke_signing_key(
            session, agency_id="polda-banten", key_id=sent.key_id, actor="test"
        )
    logged_receipt(signature)
    revoked_first = bundle()
    receipts = check_evidence(revoked_first, log_key=log_key).receipts
    assert len(receipts) == 3
    assert receipts[0].problem is None
    assert "does not verify under key" in str(receipts[1].problem)
    assert "was not in force when it signed" in str(receipts[2].problem)

    # The key history is read in log order: listing the revocation first, or the key's
    # registration twice, does not hide the revocation from either verifier.
    shuffled = {**revoked_first, "key_events": list(reversed(revoked_first["key_events"]))}
    assert "was not in force" in str(check_evidence(shuffled, log_key=log_key).receipts[2].problem)
    doubled = {
        **revoked_first,
        "key_events": [*revoked_first["key_events"], revoked_first["key_events"][0]],
    }
    with pytest.raises(VerificationFailed, match="listed twice"):
        verify_evidence(doubled, log_key=log_key)
    with pytest.raises(Failed, match="listed twice"):
        standalone_evidence(doubled, log=standalone_key)

    # The standalone verifier stops at the first problem: drop the made-up receipt's event
    # (its proof goes with it) and the one by the revoked key is what fails.
    made_up_index = receipts[1].index
    revoked_first["events"] = [e for e in revoked_first["events"] if e["index"] != made_up_index]
    with pytest.raises(Failed, match="was not in force when it signed"):
        standalone_evidence(revoked_first, log=standalone_key)
    reversed_order = {**revoked_first, "key_events": shuffled["key_events"]}
    with pytest.raises(Failed, match="was not in force when it signed"):
        standalone_evidence(reversed_order, log=standalone_key)
