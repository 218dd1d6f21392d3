"""Independent verification of an exported log: what ``exchange audit verify`` runs.

It trusts nothing but the log's public key (and the witnesses' keys): it recomputes every
leaf from the event bytes and the root at every checkpoint, checks each checkpoint's
signature, compares with the last checkpoint this auditor saw (kept in a state file), and
stops at the first problem, naming the leaf index and what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from exchange.audit import merkle
from exchange.audit.notes import (
    Checkpoint,
    Note,
    NoteError,
    Verifier,
    open_checkpoint,
    verify_cosignature,
)

EXPORT_FORMAT = "exchange-audit-export/1"
PROGRESS_EVERY = 4096


class VerificationFailed(Exception):
    """Raised when the log does not verify; ``index`` is the first bad leaf when known."""

    def __init__(self, reason: str, *, index: int | None = None) -> None:
        where = f"index {index}: " if index is not None else ""
        super().__init__(where + reason)
        self.index = index
        self.reason = reason


@dataclass(frozen=True)
class TrustedState:
    """The last checkpoint an auditor accepted: the log must only ever grow from it."""

    size: int
    root_hash: bytes
    note: str

    @classmethod
    def load(cls, path: Path) -> TrustedState | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            size=int(data["size"]), root_hash=base64.b64decode(data["root"]), note=data["note"]
        )

    def save(self, path: Path) -> None:
        document = {
            "size": self.size,
            "root": base64.b64encode(self.root_hash).decode("ascii"),
            "note": self.note,
        }
        draft = path.with_name(path.name + ".tmp")
        draft.write_text(json.dumps(document, indent=2), encoding="utf-8")
        draft.replace(path)


@dataclass
class VerifiedLog:
    checkpoint: Checkpoint
    note: str
    checkpoints_checked: int
    cosigned_by: list[str] = field(default_factory=list)


def _decode(value: Any, what: str, index: int) -> bytes:
    if not isinstance(value, str):
        raise VerificationFailed(f"{what} is missing", index=index)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise VerificationFailed(f"{what} is not base64", index=index) from None


def check_witnesses(note: Note, witnesses: Iterable[Verifier], quorum: int) -> list[str]:
    """Names of the witnesses with a valid cosignature; fails below ``quorum``."""
    valid: list[str] = []
    for witness in witnesses:
        for line in note.signed_by(witness):
            try:
                verify_cosignature(note.body, line, witness)
            except NoteError:
                continue
            valid.append(witness.name)
            break
    if len(valid) < quorum:
        raise VerificationFailed(
            f"{len(valid)} valid witness cosignature(s), {quorum} required"
            + (f" (valid: {', '.join(valid)})" if valid else "")
        )
    return valid


def verify_export(
    records: Iterable[dict[str, Any]],
    *,
    log_key: Verifier,
    state: TrustedState | None = None,
    witnesses: Iterable[Verifier] = (),
    quorum: int = 0,
    progress: Callable[[int], None] | None = None,
) -> VerifiedLog:
    stream = iter(records)
    header = next(stream, None)
    if not header or header.get("type") != "header" or header.get("format") != EXPORT_FORMAT:
        raise VerificationFailed(f"not an {EXPORT_FORMAT} stream")

    roots: dict[int, bytes] = {}
    latest: tuple[Checkpoint, Note] | None = None
    record = next(stream, None)
    while record is not None and record.get("type") == "checkpoint":
        try:
            checkpoint, note = open_checkpoint(str(record.get("note", "")), log_key)
        except NoteError as exc:
            raise VerificationFailed(f"a checkpoint does not verify: {exc}") from None
        if checkpoint.size in roots and roots[checkpoint.size] != checkpoint.root_hash:
            raise VerificationFailed(f"two signed checkpoints of size {checkpoint.size} disagree")
        roots[checkpoint.size] = checkpoint.root_hash
        if latest is None or checkpoint.size >= latest[0].size:
            latest = (checkpoint, note)
        record = next(stream, None)
    if latest is None:
        raise VerificationFailed("the export holds no signed checkpoint")
    final, final_note = latest

    if state is not None:
        if final.size < state.size:
            raise VerificationFailed(
                f"the log was rolled back: its latest checkpoint has size {final.size}, "
                f"but a checkpoint of size {state.size} was seen before"
            )
        if state.size in roots and roots[state.size] != state.root_hash:
            raise VerificationFailed(
                f"fork: the log signed two different roots for size {state.size}"
            )
        roots.setdefault(state.size, state.root_hash)

    tree = merkle.CompactRange()
    last_verified = 0
    if 0 in roots and roots[0] != merkle.EMPTY_ROOT:
        raise VerificationFailed("the checkpoint of size 0 does not have the empty root")
    # The hot loop of a million-event audit: locals, no per-event helper calls.
    sha256, a2b = hashlib.sha256, binascii.a2b_base64
    append, expected_roots = tree.append, roots
    while record is not None:
        size = tree.size
        if record.get("type") != "event":
            raise VerificationFailed(f"unexpected record {record.get('type')!r} among events")
        index = record.get("index")
        if index != size:
            if not isinstance(index, int):
                raise VerificationFailed("an event has no leaf index", index=size)
            if index > size:
                raise VerificationFailed("event missing from the log", index=size)
            raise VerificationFailed("a second event claims this leaf", index=index)
        if index >= final.size:
            break
        try:
            leaf = sha256(b"\x00" + a2b(record["event"], strict_mode=True)).digest()
            logged = record.get("leaf_hash")
            if logged is not None and a2b(logged, strict_mode=True) != leaf:
                raise VerificationFailed(
                    "the event's bytes do not hash to its logged leaf", index=index
                )
        except (KeyError, TypeError, binascii.Error):
            raise VerificationFailed(
                "the event or its leaf hash is not base64", index=index
            ) from None
        append(leaf)
        expected = expected_roots.get(size + 1)
        if expected is not None:
            if tree.root() != expected:
                seen = (
                    "the checkpoint seen before"
                    if state and size + 1 == state.size
                    else "its signed checkpoint"
                )
                raise VerificationFailed(
                    f"the tree of leaves {last_verified}..{size} does not match {seen} "
                    f"of size {size + 1} (altered, inserted or removed events)",
                    index=last_verified,
                )
            last_verified = size + 1
        if progress is not None and (size + 1) % PROGRESS_EVERY == 0:
            progress(size + 1)
        record = next(stream, None)
    if tree.size < final.size:
        raise VerificationFailed("event missing from the log", index=tree.size)
    if progress is not None:
        progress(tree.size)
    cosigned = check_witnesses(final_note, witnesses, quorum)
    return VerifiedLog(
        checkpoint=final,
        note=final_note.text(),
        checkpoints_checked=len(roots),
        cosigned_by=cosigned,
    )


def read_export(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    number = 0
    loads, decode_error = orjson.loads, orjson.JSONDecodeError  # several times json's speed
    for number, line in enumerate(lines, start=1):
        if len(line) < 3:  # a blank line, or a newline alone
            continue
        try:
            record = loads(line)
        except decode_error as exc:
            raise VerificationFailed(f"line {number} of the export is not JSON: {exc}") from None
        if type(record) is not dict:
            raise VerificationFailed(f"line {number} of the export is not a JSON object")
        yield record


def verify_evidence(bundle: dict[str, Any], *, log_key: Verifier) -> list[dict[str, Any]]:
    """Check an evidence bundle with nothing but the log's public key; return its events."""
    try:
        checkpoint, _ = open_checkpoint(str(bundle.get("checkpoint", "")), log_key)
    except NoteError as exc:
        raise VerificationFailed(f"the bundle's checkpoint does not verify: {exc}") from None
    events: list[dict[str, Any]] = []
    for entry in bundle.get("events", []):
        index = entry.get("index")
        if not isinstance(index, int):
            raise VerificationFailed("an evidence entry has no leaf index")
        canonical = _decode(entry.get("event"), "event bytes", index)
        proof = [_decode(p, "proof hash", index) for p in entry.get("proof", [])]
        try:
            merkle.verify_inclusion(
                index, checkpoint.size, merkle.leaf_hash(canonical), proof, checkpoint.root_hash
            )
        except merkle.ProofError as exc:
            raise VerificationFailed(f"not in the signed log: {exc}", index=index) from None
        events.append(json.loads(canonical))
    return events
