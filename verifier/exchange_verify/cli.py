"""``exchange-verify log|evidence|checkpoint``: exit 0 and ``OK: ...`` when everything
verifies, exit 1 and ``FAILED: ...`` (the first problem, with its leaf index) otherwise;
``--json`` prints one JSON document instead."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from exchange_verify.errors import Failed
from exchange_verify.evidence import verify_evidence
from exchange_verify.log import Seen, verify_log
from exchange_verify.notes import COSIGNATURE_V1, ED25519, Key, open_checkpoint


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _witnesses(args: argparse.Namespace) -> list[Key]:
    return [Key.parse(text, key_type=COSIGNATURE_V1) for text in args.witness or []]


def _seen(path: Path | None) -> Seen | None:
    if path is None or not path.exists():
        return None
    try:
        state = json.loads(path.read_text("utf-8"))
        return Seen(size=int(state["size"]), root=base64.b64decode(state["root"], validate=True))
    except (ValueError, KeyError, TypeError):
        raise Failed(f"the state file {path} is not one this tool wrote") from None


def _log(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    result = verify_log(
        _lines(args.export),
        log=Key.parse(args.log_key, key_type=ED25519),
        witnesses=_witnesses(args),
        quorum=args.quorum,
        seen=_seen(args.state),
    )
    newest = result.checkpoint
    if args.state:
        # With witnesses required, only what they vouched for becomes trusted.
        trusted = result.witnessed if args.quorum > 0 and result.witnessed else newest
        state = {"size": trusted.size, "root": base64.b64encode(trusted.root).decode()}
        draft = args.state.with_name(args.state.name + ".tmp")
        draft.write_text(json.dumps(state), "utf-8")
        draft.replace(args.state)
    document = {
        "ok": True,
        "size": newest.size,
        "root": newest.root.hex(),
        "checkpoints": result.checkpoints,
        "witnessed_size": result.witnessed.size if result.witnessed else None,
        "cosigned_by": result.cosigned_by,
    }
    summary = f"OK: {newest.size} events, {result.checkpoints} checkpoint(s) verified"
    if result.witnessed:
        summary += f"; cosigned by {', '.join(result.cosigned_by)} at size {result.witnessed.size}"
    return document, summary


def _evidence(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    try:
        bundle = json.loads(args.bundle.read_text("utf-8"))
    except ValueError:
        raise Failed("the bundle is not JSON") from None
    if not isinstance(bundle, dict):
        raise Failed("the bundle is not a JSON object")
    result = verify_evidence(bundle, log=Key.parse(args.log_key, key_type=ED25519))
    document = {"ok": True, "events": result.events, "receipts": result.receipts}
    summary = (
        f"OK: {len(result.events)} event(s) proven in the signed log of size "
        f"{result.checkpoint.size}, {len(result.receipts)} signed receipt(s) verified"
    )
    return document, summary


def _checkpoint(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    log = Key.parse(args.log_key, key_type=ED25519)
    witnesses = _witnesses(args)
    checkpoint = open_checkpoint(args.note.read_text("utf-8"), log)
    cosigners = checkpoint.cosigned_by(witnesses)
    if len(cosigners) < args.quorum:
        raise Failed(f"{len(cosigners)} valid witness cosignature(s), {args.quorum} required")
    summary = f"OK: checkpoint of size {checkpoint.size} signed by {log.name}"
    if args.export:
        verify_log(_lines(args.export), log=log, also=checkpoint)
        summary += ", and it is a checkpoint of the exported log"
    document = {
        "ok": True,
        "size": checkpoint.size,
        "root": checkpoint.root.hex(),
        "cosigned_by": cosigners,
        "in_export": bool(args.export),
    }
    return document, summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exchange-verify", description="Verify the exchange hub's audit log offline."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run: Callable[..., Any], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        sub.add_argument("--log-key", required=True, help="The log's pinned C2SP verifier key.")
        sub.add_argument("--json", action="store_true", help="Print one JSON document.")
        return sub

    log = command("log", _log, "Recompute every leaf and root of an exported log.")
    log.add_argument("export", type=Path, help="An export (exchange audit export).")
    log.add_argument("--state", type=Path, help="File of the last checkpoint verified.")
    evidence = command("evidence", _evidence, "Check an evidence bundle and its receipts.")
    evidence.add_argument("bundle", type=Path, help="A bundle from .../evidence.")
    checkpoint = command("checkpoint", _checkpoint, "Check a checkpoint note's signatures.")
    checkpoint.add_argument("note", type=Path, help="A checkpoint (GET /v1/audit/checkpoint).")
    checkpoint.add_argument("--export", type=Path, help="An export it must be a checkpoint of.")
    for sub in (log, checkpoint):
        sub.add_argument("--witness", action="append", help="A witness's verifier key.")
        sub.add_argument("--quorum", type=int, default=0, help="Witnesses required.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        document, summary = args.run(args)
    except (Failed, OSError, UnicodeDecodeError) as failure:
        reason = failure.reason if isinstance(failure, Failed) else str(failure)
        index = failure.index if isinstance(failure, Failed) else None
        if args.json:
            print(json.dumps({"ok": False, "index": index, "reason": reason}))
        else:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print(json.dumps(document) if args.json else summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
