"""``exchange audit`` and ``exchange witness`` as an auditor and a witness run them, and the
summary of authentication failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col, select
from typer.testing import CliRunner

from exchange.agencies.models import Scope
from exchange.app import create_app
from exchange.audit.models import AuditEvent
from exchange.cli import app as cli
from exchange.demo import BANTEN, OPERATOR
from exchange.hub import Hub
from exchange.settings import Settings
from tests.conftest import bearer, issue_key


def invoke_json(runner: CliRunner, *args: str, exit_code: int = 0) -> Any:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_export_verify_then_detect_tampering(runner: CliRunner, tmp_path: Path) -> None:
    init = invoke_json(runner, "init", "--demo")
    vkey = next(
        k["note_verifier_key"] for k in init["published_keys"]["keys"] if k["use"] == "checkpoint"
    )
    agencies = (OPERATOR, *BANTEN)
    # The region directory and the map's outlines, each agency with its key and its console
    # user, and each demo subscription.
    recorded = 2 + 3 * len(agencies) + sum(len(a.subscriptions) for a in agencies)
    assert invoke_json(runner, "audit", "integrate")["size"] == recorded
    export = tmp_path / "log.ndjson"
    assert runner.invoke(cli, ["audit", "export", "--output", str(export)]).exit_code == 0
    state = tmp_path / "auditor-state.json"
    verified = invoke_json(
        runner, "audit", "verify", str(export), "--log-key", vkey, "--state", str(state)
    )
    assert verified["ok"] is True
    assert verified["size"] == recorded
    assert json.loads(state.read_text())["size"] == recorded

    hub = Hub.start(Settings())
    try:
        with hub.session() as session:
            target = session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "api_key.created")
                .order_by(col(AuditEvent.seq))
            ).first()
            assert target is not None
            session.execute(
                update(AuditEvent)
                .where(col(AuditEvent.seq) == target.seq)
                .values(canonical=target.canonical.replace(b"api_key", b"api_kez"))
            )
    finally:
        hub.close()
    runner.invoke(cli, ["audit", "export", "--output", str(export)])
    failed = invoke_json(
        runner,
        "audit",
        "verify",
        str(export),
        "--log-key",
        vkey,
        "--state",
        str(state),
        exit_code=1,
    )
    assert failed["ok"] is False
    assert failed["index"] == target.leaf_index


def test_verify_refuses_a_key_that_is_not_the_logs(runner: CliRunner, tmp_path: Path) -> None:
    invoke_json(runner, "init")
    invoke_json(runner, "audit", "integrate")
    export = tmp_path / "log.ndjson"
    runner.invoke(cli, ["audit", "export", "--output", str(export)])
    other = invoke_json(
        runner, "witness", "keygen", "--name", "x.test/w", "--key", str(tmp_path / "k")
    )
    # A cosignature key, or another log's key, must not be accepted as the log's key.
    failed = runner.invoke(
        cli, ["audit", "verify", str(export), "--log-key", other["verifier_key"]]
    )
    assert failed.exit_code != 0


def test_witness_keygen_writes_a_private_key_once(runner: CliRunner, tmp_path: Path) -> None:
    key = tmp_path / "witness.pem"
    made = invoke_json(runner, "witness", "keygen", "--name", "w.test/1", "--key", str(key))
    assert made["verifier_key"].startswith("w.test/1+")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(cli, ["witness", "keygen", "--name", "w.test/1", "--key", str(key)])
    assert again.exit_code != 0


def test_authentication_failures_are_summarised_not_logged_one_by_one(
    settings: Settings,
) -> None:
    app = create_app(settings.model_copy(update={"audit_interval_s": 60}))
    with TestClient(app) as client:
        hub: Hub = app.state.hub
        token = issue_key(hub, "polda-banten", [Scope.receive])
        for _ in range(5):
            client.get("/v1/me", headers=bearer(token[:-3] + "xyz"))
        client.get("/v1/me")
        client.get("/v1/me", headers=bearer("garbage"))
    # Shutting down flushed the window into one event.
    with hub.session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.failures")).all()
    assert len(events) == 1
    details = json.loads(events[0].canonical)["details"]
    assert details["counts"] == {"auth.invalid": 6, "auth.missing": 1}
    assert details["key_ids"] == [token.split("_")[1]]
    assert token.split("_", 2)[2][:-3].encode() not in events[0].canonical
