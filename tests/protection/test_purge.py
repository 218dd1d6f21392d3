"""Purge: the data key and ciphertext are destroyed, the report answers 410, its metadata
stays, deliveries still due end, the purge is an audit event, and the audit log still
verifies end to end."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from exchange.agencies.models import Scope, Sensitivity
from exchange.audit.models import AuditEvent
from exchange.audit.notes import Verifier
from exchange.audit.service import export_lines, integrate
from exchange.audit.verify import verify_evidence, verify_export
from exchange.cli import app as cli
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.protection import vault
from exchange.protection.models import PersonLink, ReportKey
from exchange.reports.models import Report
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import settle, submit, subscribe
from tests.delivery.receiver import Receiver


def test_purge_destroys_the_data_and_keeps_the_trail(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    admin_token: str,
    receiver: Receiver,
) -> None:
    polda = bearer(issue_key(hub, "polda-banten", [Scope.receive], clearance=set(Sensitivity)))
    receiver.behaviour = lambda _id, _n: (503, {})  # keeps one delivery due
    created = subscribe(client, polda, connector="webhook", config={"url": receiver.url})
    receiver.secret = created["secrets"]["secret"]
    report_id = submit(client, village)
    kept = submit(client, village)
    assert client.get(f"/v1/reports/{report_id}", headers=polda).status_code == 200
    with hub.session() as session:
        ciphertext = session.get(Report, report_id).payload  # type: ignore[union-attr]

    assert client.delete(f"/v1/reports/{report_id}", headers=polda).status_code == 403
    admin = bearer(admin_token)
    assert client.delete(f"/v1/reports/{'0' * 32}", headers=admin).status_code == 404
    too_long = client.delete(f"/v1/reports/{report_id}?reason={'x' * 201}", headers=admin)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"][0]["pointer"] == "/reason"
    purged = client.delete(
        f"/v1/reports/{report_id}?reason=court+order", headers=bearer(admin_token)
    )
    assert purged.status_code == 200, purged.text
    assert purged.json()["id"] == report_id

    for reader in (village, polda):
        gone = client.get(f"/v1/reports/{report_id}", headers=reader)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "report_purged"
    assert client.get(f"/v1/reports/{kept}", headers=polda).status_code == 200
    with hub.session() as session:
        report = session.get(Report, report_id)
        assert report is not None
        assert (report.type, report.sender, report.region) == (
            "village-early-warning",
            "pimpasa-tanjakan-mekar",
            "36.03.11.2009",
        )  # metadata for statistics stays
        assert report.payload == b""
        assert session.get(ReportKey, report_id) is None
        assert session.exec(select(PersonLink).where(PersonLink.report_id == report_id)).all() == []
        with pytest.raises(vault.ReportPurged):  # not with the hub's keys, not with the old bytes
            vault.unlock(
                session, report_id=report_id, ciphertext=ciphertext, sealer=hub.keyring.sealer
            )
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "report.purged")).all()
    assert [orjson.loads(e.canonical)["details"]["reason"] for e in events] == ["court order"]
    settle(hub, DeliveryState.dead, report_id=report_id)

    with hub.session() as session:
        integrate(session, keyring=hub.keyring)
    with hub.session() as session:
        lines = [orjson.dumps(record) for record in export_lines(session)]
    result = verify_export(lines, log_key=Verifier.parse(hub.keyring.log_verifier_key()))
    with hub.session() as session:
        (purge_event,) = session.exec(
            select(AuditEvent).where(AuditEvent.action == "report.purged")
        ).all()
    assert purge_event.leaf_index is not None
    assert purge_event.leaf_index < result.checkpoint.size  # the purge itself is in the log
    evidence = client.get(
        f"/v1/reports/{report_id}/evidence",
        headers=bearer(issue_key(hub, "inspektorat", [Scope.audit])),
    )
    assert evidence.status_code == 200
    proven = verify_evidence(
        evidence.json(), log_key=Verifier.parse(hub.keyring.log_verifier_key())
    ).proven
    assert proven[0]["action"] == "report.submitted"
    assert "report.purged" in [e["action"] for e in proven]


def test_exchange_audit_verify_passes_after_a_purge(
    client: TestClient, hub: Hub, village: dict[str, str], runner: CliRunner, tmp_path: Path
) -> None:
    report_id = submit(client, village, allow_no_recipient=True)
    assert runner.invoke(cli, ["purge", report_id, "--json"]).exit_code == 0
    assert runner.invoke(cli, ["audit", "integrate"]).exit_code == 0
    export = tmp_path / "log.ndjson"
    exported = runner.invoke(cli, ["audit", "export", "--output", str(export)])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(
        cli, ["audit", "verify", "--log-key", hub.keyring.log_verifier_key(), str(export), "--json"]
    )
    assert verified.exit_code == 0, verified.output
    assert b"report.purged" in b"".join(
        base64.b64decode(json.loads(line)["event"])
        for line in export.read_text().splitlines()
        if json.loads(line).get("type") == "event"
    )


def test_purge_expired_by_retention_from_the_cli(
    client: TestClient, hub: Hub, village: dict[str, str], runner: CliRunner
) -> None:
    old, recent = (
        submit(client, village, allow_no_recipient=True),
        submit(client, village, allow_no_recipient=True),
    )
    retention = hub.registry.get("village-early-warning").retention_days
    with hub.session() as session:
        report = session.get(Report, old)
        assert report is not None
        report.received_at -= timedelta(days=retention + 1)
        session.add(report)
    dry = runner.invoke(cli, ["purge", "--expired", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["would_purge"] == [old]
    done = runner.invoke(cli, ["purge", "--expired", "--json"])
    assert json.loads(done.stdout)["purged"] == [old]
    assert client.get(f"/v1/reports/{old}", headers=village).status_code == 410
    assert client.get(f"/v1/reports/{recent}", headers=village).status_code == 200
    neither = runner.invoke(cli, ["purge", "--json"])
    assert neither.exit_code == 1
    one = runner.invoke(cli, ["purge", recent, "--reason", "asked by the data subject", "--json"])
    assert one.exit_code == 0
    assert client.get(f"/v1/reports/{recent}", headers=village).status_code == 410
