"""Backup and restore: a consistent online copy of the database and the key folder, in one
file encrypted to the operators' age public keys, and its restoration into an empty hub.

The database copy is SQLite's online backup API or ``pg_dump`` of an exported snapshot,
taken while the hub runs; the key folder is copied after it, and since keys are only ever
added (rotation keeps the old ones until ``--retire``), every key the copy needs is there.
The archive is encrypted with age (https://age-encryption.org, through ``pyrage``), so an
operator can also open it with the ``age`` tool alone. Plaintext exists only in a private
temporary folder (mode 0700) while the archive is built or opened.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyrage
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

from exchange import migrations
from exchange.audit import service as audit
from exchange.audit.models import SignedCheckpoint
from exchange.db import build_engine
from exchange.delivery.models import DUE_STATES, Delivery
from exchange.errors import Conflict, ExchangeError, InvalidInput
from exchange.i18n import t
from exchange.models import utcnow
from exchange.reports.models import Report
from exchange.settings import Settings

FORMAT = "exchange-backup/1"
SQLITE_FILE = "database.sqlite3"
PG_DUMP_FILE = "database.pgdump"
KEYS = "keys"
MANIFEST = "manifest.json"


class ToolFailed(ExchangeError):
    """Raised when pg_dump or pg_restore fails; says which and its last line of errors."""

    status = 500
    code = "tool_failed"


@dataclass(frozen=True)
class Facts:
    """What a backup holds, read in the same snapshot as the copy."""

    database: str
    checkpoint_size: int
    checkpoint_root: str
    reports: int
    undelivered: int


@dataclass(frozen=True)
class Manifest:
    format: str
    created_at: str
    facts: Facts

    def document(self) -> dict[str, Any]:
        return {"format": self.format, "created_at": self.created_at, **asdict(self.facts)}

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> Manifest:
        if document.get("format") != FORMAT:
            raise InvalidInput(t("backup.not_a_backup", reason=f"its format is not {FORMAT}"))
        try:
            facts = Facts(**{k: document[k] for k in Facts.__dataclass_fields__})
        except KeyError as missing:
            raise InvalidInput(
                t("backup.not_a_backup", reason=f"its manifest has no {missing}")
            ) from None
        return cls(format=FORMAT, created_at=str(document.get("created_at")), facts=facts)


def dialect_of(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


def _sqlite_path(database_url: str) -> Path:
    return Path(make_url(database_url).database or "")


def read_facts(connection: Connection) -> Facts:
    latest = connection.execute(
        select(col(SignedCheckpoint.size), col(SignedCheckpoint.root_hash))
        .order_by(col(SignedCheckpoint.size).desc())
        .limit(1)
    ).first()
    reports = connection.execute(select(func.count()).select_from(Report)).scalar_one()
    undelivered = connection.execute(
        select(func.count()).select_from(Delivery).where(Delivery.state.in_(DUE_STATES))  # type: ignore[attr-defined]
    ).scalar_one()
    return Facts(
        database=connection.dialect.name,
        checkpoint_size=latest[0] if latest else 0,
        checkpoint_root=latest[1].hex() if latest else "",
        reports=int(reports),
        undelivered=int(undelivered),
    )


# --- the PostgreSQL tools ---------------------------------------------------------------------


def _libpq_environment(database_url: str) -> dict[str, str]:
    """The connection for pg_dump and pg_restore as libpq variables, so that the password
    never appears on a command line (``ps`` shows those to every user of the machine)."""
    url = make_url(database_url)
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    return {**os.environ, **{k: v for k, v in values.items() if v}}


def _postgres_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise ToolFailed(t("backup.tool_failed", tool=name, reason="not installed"))
    return str(candidates[-1])


def _run_tool(name: str, arguments: list[str], database_url: str) -> None:
    result = subprocess.run(  # noqa: S603 (our own arguments; no shell)
        [_postgres_tool(name), *arguments],
        env=_libpq_environment(database_url),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["exit code " + str(result.returncode)])[-1]
        raise ToolFailed(t("backup.tool_failed", tool=name, reason=last))


# --- backup ---------------------------------------------------------------------------------


def parse_recipients(values: list[str]) -> list[Any]:
    recipients = []
    for value in values:
        try:
            recipients.append(pyrage.x25519.Recipient.from_str(value.strip()))
        except pyrage.RecipientError:
            raise InvalidInput.at(
                t("backup.bad_recipient", value=value[:80]), "/recipient"
            ) from None
    if not recipients:
        raise InvalidInput.at(t("backup.bad_recipient", value=""), "/recipient")
    return recipients


@contextmanager
def _connection(database_url: str) -> Iterator[Connection]:
    """A connection of an engine made for it alone: backup and restore run beside the hub."""
    engine = build_engine(database_url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API, in one step: a consistent copy while writers wait."""
    reading, writing = sqlite3.connect(source), sqlite3.connect(target)
    try:
        reading.backup(writing)
    finally:
        reading.close()
        writing.close()


def _copy_database(settings: Settings, staging: Path) -> Facts:
    if dialect_of(settings.database_url) == "sqlite":
        _sqlite_copy(_sqlite_path(settings.database_url), staging / SQLITE_FILE)
        with _connection(f"sqlite:///{staging / SQLITE_FILE}") as connection:
            return read_facts(connection)
    # PostgreSQL: pg_dump reads the snapshot this transaction exported, so the facts in the
    # manifest are those of the very copy.
    with _connection(settings.database_url) as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = read_facts(connection)
            _run_tool(
                "pg_dump",
                ["--format=custom", f"--snapshot={snapshot}", f"--file={staging / PG_DUMP_FILE}"],
                settings.database_url,
            )
            return facts


def create_backup(settings: Settings, *, destination: Path, recipients: list[str]) -> Manifest:
    """Write an encrypted, consistent copy of the database and the key folder to
    ``destination``; returns its manifest."""
    age_recipients = parse_recipients(recipients)
    with _private_folder() as work:
        staging = work / "backup"
        staging.mkdir()
        facts = _copy_database(settings, staging)
        shutil.copytree(settings.key_dir, staging / KEYS)
        manifest = Manifest(FORMAT, utcnow().isoformat(timespec="seconds"), facts)
        (staging / MANIFEST).write_text(json.dumps(manifest.document(), indent=2), "utf-8")
        archive = work / "backup.tar"
        with tarfile.open(archive, "w") as tar:
            for member in sorted(staging.iterdir()):
                tar.add(member, arcname=member.name)
        draft = destination.with_name(destination.name + ".partial")
        pyrage.encrypt_file(str(archive), str(draft), age_recipients)
        draft.chmod(0o600)
        draft.replace(destination)
    return manifest


@contextmanager
def _private_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="exchange-backup-") as name:
        folder = Path(name)
        folder.chmod(0o700)
        yield folder


# --- restore --------------------------------------------------------------------------------


def _identities(path: Path) -> list[Any]:
    found = []
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                found.append(pyrage.x25519.Identity.from_str(line.strip()))
            except pyrage.IdentityError:
                continue
    if not found:
        raise InvalidInput.at(t("backup.bad_identity"), "/identity")
    return found


def _open(source: Path, identity: Path, work: Path) -> Manifest:
    archive = work / "backup.tar"
    try:
        pyrage.decrypt_file(str(source), str(archive), _identities(identity))
    except pyrage.DecryptError:
        raise InvalidInput.at(t("backup.undecryptable"), "/backup") from None
    staging = work / "backup"
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")  # no links out, no absolute paths
    except tarfile.TarError as exc:
        raise InvalidInput(t("backup.not_a_backup", reason=str(exc))) from None
    try:
        document = json.loads((staging / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        raise InvalidInput(t("backup.not_a_backup", reason="it has no manifest")) from None
    manifest = Manifest.parse(document)
    database = SQLITE_FILE if manifest.facts.database == "sqlite" else PG_DUMP_FILE
    for member in (database, KEYS):
        if not (staging / member).exists():
            raise InvalidInput(t("backup.not_a_backup", reason=f"it holds no {member}"))
    return manifest


def _database_is_empty(database_url: str) -> bool:
    if dialect_of(database_url) == "sqlite":
        path = _sqlite_path(database_url)
        if not path.exists() or path.stat().st_size == 0:
            return True
    with _connection(database_url) as connection:
        return not inspect(connection).get_table_names()


def _folder_is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def restore_backup(settings: Settings, *, source: Path, identity: Path, force: bool) -> Manifest:
    """Put a backup's database and keys in place of the configured (empty) ones and bring
    the schema up to this version; the caller records the restoration
    (:func:`record_restoration`) once the hub runs on them."""
    with _private_folder() as work:
        manifest = _open(source, identity, work)
        staging = work / "backup"
        target_dialect = dialect_of(settings.database_url)
        if manifest.facts.database != target_dialect:
            raise Conflict(
                t("backup.other_database", backup=manifest.facts.database, target=target_dialect)
            )
        if not force:
            if not _database_is_empty(settings.database_url):
                raise Conflict(t("backup.target_not_empty", what="EXCHANGE_DATABASE_URL"))
            if not _folder_is_empty(settings.key_dir):
                raise Conflict(t("backup.target_not_empty", what=str(settings.key_dir)))
        # The database first, in one transaction where the tool allows: a restore that
        # fails leaves the key folder as it was and no half-written schema.
        if target_dialect == "sqlite":
            _restore_sqlite(staging / SQLITE_FILE, _sqlite_path(settings.database_url))
        else:
            _run_tool(
                "pg_restore",
                ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                 "--clean", "--if-exists",
                 "--dbname", make_url(settings.database_url).database or "",
                 str(staging / PG_DUMP_FILE)],
                settings.database_url,
            )  # fmt: skip
        migrations.upgrade(settings.database_url)
        _check_against(manifest, settings.database_url)
        _restore_keys(staging / KEYS, settings.key_dir)
    return manifest


def _check_against(manifest: Manifest, database_url: str) -> None:
    """The restored database must be the one the manifest describes: the same signed log
    head and the same number of reports."""
    with _connection(database_url) as connection:
        restored = read_facts(connection)
    expected = manifest.facts
    if (restored.checkpoint_size, restored.checkpoint_root, restored.reports) != (
        expected.checkpoint_size,
        expected.checkpoint_root,
        expected.reports,
    ):
        raise Conflict(
            t(
                "backup.not_a_backup",
                reason="the restored database does not match its manifest "
                f"(log size {restored.checkpoint_size}, {restored.reports} reports; the "
                f"manifest says {expected.checkpoint_size} and {expected.reports})",
            )
        )


def record_restoration(session: Session, manifest: Manifest, *, actor: str) -> None:
    """The restored log says it was restored, from which backup and at which checkpoint:
    an auditor sees where its history resumed."""
    audit.record(
        session,
        action="hub.restored",
        subject="hub",
        actor=actor,
        details={
            "backup_created_at": manifest.created_at,
            "checkpoint_size": manifest.facts.checkpoint_size,
            "checkpoint_root": manifest.facts.checkpoint_root,
            "reports": manifest.facts.reports,
        },
    )


def _restore_keys(source: Path, target: Path) -> None:
    """The key folder is built beside its place and moved in whole at the end."""
    draft = target.with_name(target.name + ".restoring")
    shutil.rmtree(draft, ignore_errors=True)
    draft.mkdir(mode=0o700, parents=True)
    for path in sorted(source.rglob("*")):
        destination = draft / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(mode=0o700, exist_ok=True)
            continue
        shutil.copyfile(path, destination)
        destination.chmod(0o600)
    if target.exists():
        shutil.rmtree(target)  # empty, or --force said to overwrite it
    draft.replace(target)


def _restore_sqlite(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # the old file and its journal, if any
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    _sqlite_copy(source, target)
    target.chmod(0o600)
