"""``exchange audit ...`` and ``exchange witness ...``: what auditors and witnesses run."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from exchange.audit import service
from exchange.audit.notes import KeyType, NoteError, Verifier, verifier_key
from exchange.audit.verify import (
    TrustedState,
    VerificationFailed,
    verify_evidence,
    verify_export,
)
from exchange.audit.witness import cosign_latest
from exchange.commandline import JsonFlag, emit, hub_session, load_settings, reporting
from exchange.crypto import b64url, raw_public_bytes
from exchange.hub import Hub

audit_app = typer.Typer(help="The tamper-evident exchange log.", no_args_is_help=True)
witness_app = typer.Typer(help="Cosign the hub's checkpoints as a witness.", no_args_is_help=True)

LogKey = Annotated[
    str,
    typer.Option(
        "--log-key",
        help="The log's pinned C2SP verifier key (name+keyid+key), as published by the hub "
        "at /.well-known/exchange/keys and checked out of band.",
    ),
]
HubUrl = Annotated[str | None, typer.Option("--hub", help="Base URL of a live hub.")]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="EXCHANGE_TOKEN", help="API key (or EXCHANGE_TOKEN)."),
]


def _verifier(vkey: str) -> Verifier:
    try:
        return Verifier.parse(vkey)
    except NoteError as exc:
        raise typer.BadParameter(str(exc)) from None


def _client(hub: str, token: str | None) -> httpx.Client:
    if not token:
        raise typer.BadParameter("an API key is needed: --token or EXCHANGE_TOKEN")
    return httpx.Client(
        base_url=hub.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _report_failure(failure: Exception, as_json: bool, verdict: str = "FAILED") -> NoReturn:
    message = str(failure)
    document = {"ok": False, "index": getattr(failure, "index", None), "reason": message}
    emit(document, as_json=as_json, human=lambda: typer.echo(f"{verdict}: {message}", err=True))
    raise typer.Exit(1)


@audit_app.command("integrate")
def integrate_now(as_json: JsonFlag = False) -> None:
    """Append pending events and sign a checkpoint now (workers do this continuously)."""
    settings = load_settings()
    with reporting(as_json):
        hub = Hub.start(settings)
        try:
            with hub.session() as session:
                checkpoint = service.integrate(session, keyring=hub.keyring)
                latest = service.latest_checkpoint(session)
        finally:
            hub.close()
    document = {"signed": checkpoint is not None, "size": latest.size if latest else 0}
    emit(document, as_json=as_json, human=lambda: typer.echo(f"log size {document['size']}"))


@audit_app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the whole log as NDJSON: header, checkpoints, then every event with its leaf."""
    settings = load_settings()
    with reporting(False), hub_session(settings) as session, ExitStack() as files:
        sink = files.enter_context(output.open("w", encoding="utf-8")) if output else sys.stdout
        for record in service.export_lines(session):
            sink.write(json.dumps(record, separators=(",", ":")) + "\n")


def _export_source(path: Path | None, hub: str | None, token: str | None) -> Iterator[str | bytes]:
    if hub:
        with _client(hub, token) as client, client.stream("GET", "/v1/audit/export") as response:
            if response.status_code != 200:
                response.read()
                raise VerificationFailed(
                    f"the hub answered {response.status_code}: {response.text}"
                )
            yield from response.iter_lines()
        return
    if path is None:
        raise typer.BadParameter("give an export file or --hub")
    with path.open("rb") as lines:
        yield from lines


@audit_app.command("verify")
def verify(
    log_key: LogKey,
    export_file: Annotated[
        Path | None, typer.Argument(help="An export from 'exchange audit export'.")
    ] = None,
    hub: HubUrl = None,
    token: Token = None,
    state: Annotated[
        Path | None,
        typer.Option(help="File keeping the last verified checkpoint; the log must extend it."),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="A witness's cosignature verifier key; repeat for several."),
    ] = None,
    quorum: Annotated[int, typer.Option(help="Valid witness cosignatures required.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Recompute every leaf and root of the log, check every checkpoint's signature, check
    it extends the last verified checkpoint, and require a quorum of witnesses."""
    pinned = _verifier(log_key)
    witnesses = [_verifier(w) for w in witness or []]
    trusted = TrustedState.load(state) if state else None
    started = time.monotonic()
    progress_bar: Any = None

    def progress(done: int) -> None:
        nonlocal progress_bar
        if as_json or not sys.stderr.isatty():
            return
        if progress_bar is None:
            progress_bar = typer.progressbar(length=done or 1, label="verifying", file=sys.stderr)
        progress_bar.update(done - progress_bar.pos)

    try:
        result = verify_export(
            _export_source(export_file, hub, token),
            log_key=pinned,
            state=trusted,
            witnesses=witnesses,
            quorum=quorum,
            progress=progress,
        )
    except (VerificationFailed, httpx.HTTPError) as failure:
        _report_failure(failure, as_json)
    if state:
        # With witnesses required, only what they vouched for becomes trusted: the events
        # after it are checked again, against a later quorum, next time.
        trusted_checkpoint, trusted_note = (
            (result.witnessed, result.witnessed_note)
            if quorum > 0 and result.witnessed
            else (result.checkpoint, result.note)
        )
        TrustedState(
            size=trusted_checkpoint.size,
            root_hash=trusted_checkpoint.root_hash,
            note=trusted_note,
        ).save(state)
    document = {
        "ok": True,
        "size": result.checkpoint.size,
        "root": result.checkpoint.root_hash.hex(),
        "checkpoints": result.checkpoints_checked,
        "cosigned_by": result.cosigned_by,
        "witnessed_size": result.witnessed.size if result.witnessed else None,
        "unwitnessed_events": result.checkpoint.size - result.witnessed.size
        if result.witnessed
        else None,
        "seconds": round(time.monotonic() - started, 3),
    }

    def human() -> None:
        typer.echo(
            f"OK: {document['size']} events, {document['checkpoints']} checkpoint(s) verified"
            f" in {document['seconds']} s"
            + (
                f"; cosigned by {', '.join(result.cosigned_by)} at size "
                f"{document['witnessed_size']}, which the newest checkpoint extends"
                if result.witnessed
                else ""
            )
        )

    emit(document, as_json=as_json, human=human)


@audit_app.command("verify-evidence")
def verify_evidence_bundle(
    log_key: LogKey,
    bundle: Annotated[Path, typer.Argument(help="A bundle from GET /v1/audit/evidence.")],
    as_json: JsonFlag = False,
) -> None:
    """Check an evidence bundle offline with nothing but the log's public key: each event's
    inclusion in the signed checkpoint, and each signed receipt against the recipient's key
    as the log recorded it when the receipt was given."""
    try:
        check = verify_evidence(json.loads(bundle.read_text("utf-8")), log_key=_verifier(log_key))
    except VerificationFailed as failure:
        _report_failure(failure, as_json)
    events = check.proven
    receipts = [
        {"index": r.index, "agency": r.agency, "delivery": r.delivery, "key_id": r.key_id}
        for r in check.receipts
    ]
    emit(
        {"ok": True, "events": events, "receipts": receipts},
        as_json=as_json,
        human=lambda: typer.echo(
            f"OK: {len(events)} event(s) proven in the signed log, "
            f"{len(receipts)} signed receipt(s) verified"
        ),
    )


@witness_app.command("keygen")
def witness_keygen(
    name: Annotated[str, typer.Option(help="The witness's name, e.g. witness.bp3mi.go.id/w1.")],
    key: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 0600).")],
    as_json: JsonFlag = False,
) -> None:
    """Generate a witness key; register its public key as a signing key of your agency."""
    if key.exists():
        raise typer.BadParameter(f"{key} exists; a witness keeps its key")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    raw = raw_public_bytes(private.public_key())
    document = {
        "name": name,
        "public_key": b64url(raw),
        "verifier_key": verifier_key(name, KeyType.cosignature_v1, raw),
    }
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(
            f"public key (register it): {document['public_key']}\n"
            f"verifier key (give it to auditors): {document['verifier_key']}"
        ),
    )


@witness_app.command("run")
def witness_run(
    hub: Annotated[str, typer.Option(help="Base URL of the hub.")],
    log_key: LogKey,
    name: Annotated[str, typer.Option(help="The witness's name, as in its verifier key.")],
    key: Annotated[Path, typer.Option(help="The witness's private key (PEM).")],
    state: Annotated[Path, typer.Option(help="File keeping the last cosigned checkpoint.")],
    token: Token = None,
    interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 10.0,
    once: Annotated[bool, typer.Option(help="Cosign once and exit.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line per round (NDJSON).")
    ] = False,
) -> None:
    """Cosign the hub's latest checkpoint whenever it extends the last one cosigned."""
    private = load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise typer.BadParameter(f"{key} is not an Ed25519 private key")
    pinned = _verifier(log_key)
    with reporting(as_json), _client(hub, token) as client:
        while True:
            try:
                cosigned = cosign_latest(
                    client, log_key=pinned, name=name, key=private, state_path=state
                )
            except (VerificationFailed, httpx.HTTPError) as failure:
                _report_failure(failure, as_json, verdict="REFUSED")
            summary = (
                f"cosigned size {cosigned.size}"
                if cosigned.fresh
                else f"size {cosigned.size} unchanged, already cosigned"
            )
            round_document = {
                "ok": True,
                "size": cosigned.size,
                "cosigned": cosigned.fresh,
                "time": cosigned.timestamp if cosigned.fresh else None,
            }
            # One compact line per round (NDJSON), for a log that a long-running witness
            # keeps; --json elsewhere prints one indented document.
            typer.echo(json.dumps(round_document) if as_json else summary)
            if once:
                return
            time.sleep(interval)
