"""Backup and restore drill, on both databases: back up while reports keep arriving, destroy
the database and the key folder, restore, and check that the log extends the witness's last
checkpoint, every report the backup holds is readable, and every delivery it left undone
goes out, with the envelope ids it had."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.audit.notes import KeyType, Verifier, verifier_key
from exchange.audit.service import export_lines, integrate
from exchange.audit.verify import TrustedState, verify_export
from exchange.audit.witness import cosign_latest
from exchange.cli import app as cli
from exchange.crypto import b64url, raw_public_bytes
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.ops.backup import create_backup
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import WARNING, deliveries, fast_settings, settle, submit
from tests.delivery.receiver import Receiver, running_receiver


def invoke(runner: CliRunner, *args: str, exit_code: int = 0) -> dict[str, object]:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    document: dict[str, object] = json.loads(result.stdout) if exit_code == 0 else {}
    return document


def destroy(database_url: str, key_dir: Path) -> None:
    """What a lost machine leaves: no database, no keys (an empty database stands ready)."""
    shutil.rmtree(key_dir)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
        return
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)'.encode())
        db.execute(f'CREATE DATABASE "{url.database}"'.encode())


def test_backup_under_load_destroy_restore_then_verify_read_and_resume(
    database_url: str, tmp_path: Path, runner: CliRunner
) -> None:
    identity = tmp_path / "operator.age"
    recipient = str(invoke(runner, "backup-key", "--out", str(identity))["recipient"])
    assert identity.stat().st_mode & 0o777 == 0o600
    # Retries every 2 s for a minute: the deliveries are still owed when the backup is
    # taken, and come due soon after the restore.
    settings = fast_settings(database_url, tmp_path, delivery_schedule_s=[0] + [2.0] * 30)
    receiver = Receiver(behaviour=lambda _id, _attempt: (503, {}))  # down when backed up
    backup_file = tmp_path / "hub.backup.age"
    witness_state = tmp_path / "witness.json"

    # One receiver, at one address, for the whole drill: its URL is in the backup.
    with running_receiver(receiver):
        with TestClient(create_app(settings)) as client:
            hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
            village = bearer(
                issue_key(hub, "pimpasa-desa", [Scope.submit], kind=AgencyKind.village)
            )
            polda = bearer(issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police))
            created = client.post(
                "/v1/subscriptions",
                json={"connector": "webhook", "config": {"url": receiver.url}},
                headers=polda,
            )
            assert created.status_code == 201, created.text
            receiver.secret = created.json()["secrets"]["secret"]
            before = [submit(client, village) for _ in range(10)]

            # A witness cosigns the log as it stands.
            witness_key = Ed25519PrivateKey.generate()
            witness_token = issue_key(hub, "witness-bp3mi", [Scope.audit])
            raw = raw_public_bytes(witness_key.public_key())
            with hub.session() as session:
                agencies.add_signing_key(
                    session, agency_id="witness-bp3mi", public_key=b64url(raw), actor="test"
                )
                integrate(session, keyring=hub.keyring)
            witness = Verifier.parse(verifier_key("bp3mi.test/w", KeyType.cosignature_v1, raw))
            client.headers["Authorization"] = f"Bearer {witness_token}"
            cosign_latest(
                client, log_key=Verifier.parse(hub.keyring.log_verifier_key()),
                name=witness.name, key=witness_key, state_path=witness_state,
            )  # fmt: skip
            del client.headers["Authorization"]

            # The backup runs while reports keep arriving.
            backing_up = threading.Thread(
                target=create_backup,
                args=(settings,),
                kwargs={"destination": backup_file, "recipients": [recipient]},
            )
            during: list[str] = []
            backing_up.start()
            while backing_up.is_alive() or len(during) < 3:
                during.append(submit(client, village))
            backing_up.join()
            log_key = hub.keyring.log_verifier_key()
        assert backup_file.stat().st_mode & 0o777 == 0o600
        assert b"polda" not in backup_file.read_bytes()  # encrypted, not merely packed

        destroy(settings.database_url, settings.key_dir)
        wrong = tmp_path / "other.age"
        invoke(runner, "backup-key", "--out", str(wrong))
        refused = runner.invoke(cli, ["restore", str(backup_file), "--identity", str(wrong)])
        assert refused.exit_code == 1
        assert "cannot be decrypted" in refused.stderr
        manifest = invoke(runner, "restore", str(backup_file), "--identity", str(identity))
        again = runner.invoke(cli, ["restore", str(backup_file), "--identity", str(identity)])
        assert again.exit_code == 1
        assert "is not empty" in again.stderr

        receiver.behaviour = lambda _id, _attempt: (200, {})
        with TestClient(create_app(settings)) as client:
            hub = client.app.state.hub  # type: ignore[attr-defined]
            # Every report accepted before the backup began, readable with the old keys.
            for report_id in before:
                read = client.get(f"/v1/reports/{report_id}", headers=polda)
                assert read.status_code == 200, read.text
                assert read.json()["payload"]["village_code"] == WARNING["village_code"]
            found = [client.get(f"/v1/reports/{r}", headers=polda).status_code for r in during]
            assert set(found) <= {200, 404}  # whole, or not in the backup at all
            assert len(before) + found.count(200) == manifest["reports"]
            # Each undelivered delivery goes out, once, under the envelope id it had.
            restored = deliveries(hub)
            # The restored hub may have delivered some already: the backup owed them all.
            assert manifest["undelivered"] == len(restored) > 0
            settle(hub, DeliveryState.delivered, count=len(restored))
            assert sorted(set(receiver.accepted_ids())) == sorted(d.id for d in restored)

            with hub.session() as session:
                integrate(session, keyring=hub.keyring)
                lines = [json.dumps(line) for line in export_lines(session)]
    # The restored log extends the checkpoint the witness cosigned before the backup.
    seen = TrustedState.load(witness_state)
    assert seen is not None
    verified = verify_export(lines, log_key=Verifier.parse(log_key), state=seen)
    backed_up = int(str(manifest["checkpoint_size"]))
    assert verified.checkpoint.size > backed_up >= seen.size
    events = [json.loads(line) for line in lines]
    actions = [
        json.loads(base64.b64decode(e["event"]))["action"] for e in events if e["type"] == "event"
    ]
    assert actions.count("hub.restored") == 1


@pytest.mark.parametrize("recipient", ["age1nope", "", "AGE-SECRET-KEY-1XYZ"])
def test_a_backup_needs_a_real_recipient(runner: CliRunner, tmp_path: Path, recipient: str) -> None:
    invoke(runner, "init")
    result = runner.invoke(
        cli, ["backup", "--to", str(tmp_path / "b.age"), "--recipient", recipient, "--json"]
    )
    assert result.exit_code == 1
    assert "age X25519 recipient" in result.stdout + result.stderr
    assert not (tmp_path / "b.age").exists()


def repacked(backup: Path, identity: Path, change: Callable[[Path], None], out: Path) -> Path:
    """The backup decrypted, changed by ``change`` (given its unpacked folder), packed and
    encrypted again to the same operator: what someone with write access to the backup
    store, but not the operator's identity, could not make, and a corrupt copy might be."""
    secret = identity.read_text().splitlines()[-1]
    operator = pyrage.x25519.Identity.from_str(secret)
    unpacked = out.parent / "unpacked"
    with tarfile.open(fileobj=io.BytesIO(pyrage.decrypt(backup.read_bytes(), [operator]))) as tar:
        tar.extractall(unpacked, filter="data")
    change(unpacked)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for member in sorted(unpacked.iterdir()):
            tar.add(member, arcname=member.name)
    out.write_bytes(pyrage.encrypt(archive.getvalue(), [operator.to_public()]))
    return out


def test_a_restore_refuses_a_backup_that_is_not_what_it_says(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    invoke(runner, "init", "--demo")
    identity = tmp_path / "operator.age"
    recipient = str(invoke(runner, "backup-key", "--out", str(identity))["recipient"])
    backup = tmp_path / "hub.age"
    invoke(runner, "backup", "--to", str(backup), "--recipient", recipient)

    def without_database(folder: Path) -> None:
        for name in ("database.sqlite3", "database.pgdump"):
            (folder / name).unlink(missing_ok=True)

    def another_count(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "reports": 7}))

    for change, says in ((without_database, "holds no database"), (another_count, "manifest")):
        shutil.rmtree(tmp_path / "unpacked", ignore_errors=True)
        broken = repacked(backup, identity, change, tmp_path / "broken.age")
        destroy(settings.database_url, settings.key_dir)
        refused = runner.invoke(cli, ["restore", str(broken), "--identity", str(identity)])
        assert refused.exit_code == 1
        assert says in refused.stderr
        # The keys stay as they were (absent): nothing half restored beside the database.
        assert not settings.key_dir.exists()
        settings.key_dir.mkdir()
