"""The ``exchange`` command: ``--json`` prints exactly one JSON document, and what it creates
works against the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from exchange.app import create_app
from exchange.cli import app as cli
from exchange.demo import BANTEN, OPERATOR
from exchange.settings import Settings
from tests.conftest import bearer
from tests.servers import wait_until


def run_json(runner: CliRunner, *args: str, exit_code: int = 0) -> Any:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    return json.loads(result.stdout)  # exactly one document, or this raises


def test_init_demo_registers_the_banten_agencies_with_working_keys(
    runner: CliRunner, settings: Settings
) -> None:
    document = run_json(runner, "init", "--demo")
    agencies = {a["id"]: a for a in document["agencies"]}
    assert set(agencies) == {OPERATOR.id, *(d.id for d in BANTEN)}
    assert agencies["pimpasa-tanjakan-mekar"]["jurisdiction"] == "36.03.11.2009"
    # Village immigration officers are immigration officers: they may file passport flags.
    assert agencies["pimpasa-tanjakan-mekar"]["kind"] == "immigration"
    assert agencies["kanim-tangerang"]["kind"] == "immigration"
    assert {"polres-tangerang", "kanwil-kemenkum-banten"} <= set(agencies)
    # The shipped Kemendagri directory is loaded: unknown codes are refused out of the box.
    assert document["regions"]["loaded"] is True
    assert document["regions"]["count"] > 90_000
    assert all(a["created"] and a["api_key"]["token"].startswith("exk_") for a in agencies.values())
    # One console user per agency, its one-time password shown here only.
    assert agencies["polda-banten"]["user"]["username"] == "petugas.polda-banten"
    assert len(agencies["polda-banten"]["user"]["one_time_password"]) >= 12
    assert {k["use"] for k in document["published_keys"]["keys"]} == {"checkpoint", "envelope"}

    with TestClient(create_app(settings)) as client:
        me = client.get("/v1/me", headers=bearer(agencies["polda-banten"]["api_key"]["token"]))
        assert me.json()["agency"]["id"] == "polda-banten"
        assert me.json()["scopes"] == ["receive", "submit"]
        subscribed = client.get(
            "/v1/subscriptions", headers=bearer(agencies["polda-banten"]["api_key"]["token"])
        )
        assert [s["label"] for s in subscribed.json()] == agencies["polda-banten"]["subscriptions"]
        admin = bearer(agencies["hub"]["api_key"]["token"])
        assert client.get("/v1/agencies", headers=admin).status_code == 200
        # The keys init generated are the keys the hub publishes.
        assert client.get("/.well-known/exchange/keys").json() == document["published_keys"]


def test_init_again_changes_nothing_and_shows_no_keys(runner: CliRunner) -> None:
    run_json(runner, "init", "--demo")
    again = run_json(runner, "init", "--demo")
    assert all(not a["created"] and a["api_key"] is None for a in again["agencies"])
    assert again["regions"] == {"loaded": False}
    keys = run_json(runner, "agency", "key", "list", "polda-banten")
    assert len(keys) == 1


def test_init_prints_keys_for_people_too(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 0, result.stderr
    assert "exk_" in result.stdout
    assert "console user petugas.hub, one-time password" in result.stdout
    assert "Store these keys and passwords now" in result.stdout


def test_agency_and_key_commands_round_trip(runner: CliRunner, settings: Settings) -> None:
    added = run_json(
        runner,
        "agency",
        "add",
        "polres-serang",
        "--name",
        "Polres Serang",
        "--kind",
        "police",
        "--jurisdiction",
        "36.04",
    )
    assert added["jurisdiction"] == "36.04"
    listed = run_json(runner, "agency", "list")
    assert [a["id"] for a in listed] == ["polres-serang"]
    issued = run_json(
        runner, "agency", "key", "create", "polres-serang", "--scope", "receive", "--label", "ci"
    )
    assert issued["scopes"] == ["receive"]
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/me", headers=bearer(issued["token"])).status_code == 200
        revoked = run_json(runner, "agency", "key", "revoke", "polres-serang", issued["id"])
        assert revoked["revoked_at"] is not None
        assert client.get("/v1/me", headers=bearer(issued["token"])).status_code == 401
    updated = run_json(runner, "agency", "update", "polres-serang", "--inactive")
    assert updated["active"] is False


def test_invalid_input_is_a_json_error_with_pointer(runner: CliRunner) -> None:
    error = run_json(
        runner,
        "agency",
        "add",
        "polres-serang",
        "--name",
        "Polres Serang",
        "--kind",
        "police",
        "--jurisdiction",
        "36-04",
        exit_code=1,
    )
    assert error["error"]["code"] == "invalid"
    assert error["error"]["details"][0]["pointer"] == "/jurisdiction"


def test_errors_without_json_go_to_stderr(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["agency", "key", "create", "nobody", "--scope", "receive"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "No agency with id 'nobody'" in result.stderr


def test_cli_speaks_indonesian_under_an_indonesian_locale(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "id_ID.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    result = runner.invoke(cli, ["agency", "key", "create", "nobody", "--scope", "receive"])
    assert "Tidak ada instansi dengan id 'nobody'" in result.stderr


def test_signing_key_commands(runner: CliRunner, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    run_json(runner, "init", "--demo")
    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    (tmp_path / "signer.pub.pem").write_text(pem)
    added = run_json(
        runner, "agency", "signing-key", "add", "kanim-tangerang", str(tmp_path / "signer.pub.pem")
    )
    listed = run_json(runner, "agency", "signing-key", "list", "kanim-tangerang")
    assert [k["id"] for k in listed] == [added["id"]]
    revoked = run_json(runner, "agency", "signing-key", "revoke", "kanim-tangerang", added["id"])
    assert revoked["revoked_at"] is not None


def test_worker_refuses_the_memory_broker(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["worker"])
    assert result.exit_code == 1
    assert "EXCHANGE_BROKER_URL=redis://" in result.stderr


def test_db_upgrade_on_a_new_database(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.stderr
    assert run_json(runner, "agency", "list") == []


def test_the_readme_walkthrough_a_referral_reaches_bp3mi_and_dinsos_sees_it_acknowledged(
    runner: CliRunner, settings: Settings
) -> None:
    """The README's walk-through, on the demo agencies as `exchange init --demo` leaves
    them: no recipients list, no subscription made by hand."""
    document = run_json(runner, "init", "--demo")
    token = {a["id"]: bearer(a["api_key"]["token"]) for a in document["agencies"]}
    examples = Path(__file__).resolve().parents[1] / "schemas"
    referral = json.loads(
        (examples / "victim-referral/examples/valid/dinsos-to-bp3mi.json").read_text()
    )
    with TestClient(create_app(settings)) as client:
        sent = client.post(
            "/v1/reports",
            json={"type": "victim-referral", "payload": referral},
            headers=token["dinsos-banten"],
        )
        assert sent.status_code == 202, sent.text
        assert (sent.json()["tlp"], sent.json()["routed_to"]) == ("RED", ["bp3mi-banten"])
        report_id = sent.json()["id"]

        read: list[dict[str, Any]] = []  # a read leases what it returns: keep it

        def inbox() -> bool:
            read.extend(client.get("/v1/inbox", headers=token["bp3mi-banten"]).json()["items"])
            return bool(read)

        wait_until(inbox, what="the referral in BP3MI's inbox", deadline_s=20)
        (item,) = read
        assert item["envelope"]["subject"] == report_id
        acked = client.post(
            "/v1/inbox/ack", json={"ids": [item["delivery_id"]]}, headers=token["bp3mi-banten"]
        )
        assert acked.status_code == 200
        seen = client.get(f"/v1/reports/{report_id}/deliveries", headers=token["dinsos-banten"])
        (delivery,) = seen.json()
        assert (delivery["agency_id"], delivery["state"]) == ("bp3mi-banten", "acknowledged")
        # Unknown region codes are refused out of the box: init loaded the directory.
        village = token["pimpasa-tanjakan-mekar"]
        warning = json.loads(
            (
                examples / "village-early-warning/examples/valid/calo-group-departure.json"
            ).read_text()
        )
        unknown = client.post(
            "/v1/reports",
            json={
                "type": "village-early-warning",
                "payload": {**warning, "village_code": "36.99.99.9999"},
            },
            headers=village,
        )
        assert unknown.status_code == 422
        assert unknown.json()["error"]["details"][0]["pointer"] == "/payload/village_code"
