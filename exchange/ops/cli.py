"""``exchange backup``, ``exchange restore`` and ``exchange backup-key``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import pyrage
import typer

from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, emit, hub_session, load_settings, reporting
from exchange.ops import backup as backups


def backup(
    to: Annotated[Path, typer.Option("--to", help="The backup file to write (age-encrypted).")],
    recipient: Annotated[
        list[str],
        typer.Option(help="An operator's age public key (age1...); repeat for several."),
    ],
    as_json: JsonFlag = False,
) -> None:
    """A consistent copy of the database and the key folder, taken while the hub runs,
    encrypted to the operators' age keys (docs/operating.md: what, how often, how long)."""
    settings = load_settings()
    with reporting(as_json):
        manifest = backups.create_backup(settings, destination=to, recipients=recipient)
    document = {"file": str(to), "bytes": to.stat().st_size, **manifest.document()}
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(
            f"backup written to {to}: {manifest.facts.reports} reports, log size "
            f"{manifest.facts.checkpoint_size}, {document['bytes']} bytes"
        ),
    )


def restore(
    source: Annotated[Path, typer.Argument(help="A file written by 'exchange backup'.")],
    identity: Annotated[
        Path, typer.Option(help="The operator's age identity file (AGE-SECRET-KEY-1...).")
    ],
    force: Annotated[
        bool, typer.Option(help="Overwrite a database and key folder that are not empty.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into the configured database and key folder (both empty), then
    record the restoration in the restored log."""
    settings = load_settings()
    with reporting(as_json):
        manifest = backups.restore_backup(settings, source=source, identity=identity, force=force)
        with hub_session(settings) as session:
            backups.record_restoration(session, manifest, actor=operator_actor())
    emit(
        manifest.document(),
        as_json=as_json,
        human=lambda: typer.echo(
            f"restored the backup of {manifest.created_at}: {manifest.facts.reports} reports, "
            f"{manifest.facts.undelivered} deliveries to resume, log size "
            f"{manifest.facts.checkpoint_size}; verify the log from your witnesses' state"
        ),
    )


def backup_key(
    out: Annotated[Path, typer.Option("--out", help="Where to write the identity (0600).")],
    as_json: JsonFlag = False,
) -> None:
    """Generate an operator's age identity for backups; give its public key to
    'exchange backup --recipient' and keep the file off the hub's machine."""
    if out.exists():
        raise typer.BadParameter(f"{out} exists; an identity is never overwritten")
    identity = pyrage.x25519.Identity.generate()
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"# public key: {identity.to_public()}\n{identity}\n")
    document = {"identity_file": str(out), "recipient": str(identity.to_public())}
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(f"public key (for --recipient): {document['recipient']}"),
    )
