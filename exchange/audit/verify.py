"""Independent verification of an exported log: what ``exchange audit verify`` runs.

It trusts nothing but the log's public key (and the witnesses' keys): it recomputes every
leaf from the event bytes and the root at every checkpoint, checks each checkpoint's
signature, compares with the last checkpoint this auditor saw (kept in a state file), and
stops at the first problem, naming the leaf index and what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import collections
import concurrent.futures
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange.audit import merkle
from exchange.audit.notes import (
    Checkpoint,
    Note,
    NoteError,
    Verifier,
    open_checkpoint,
    verify_cosignature,
)
from exchange.crypto import b64url_decode, jwk_thumbprint, receipt_message

EXPORT_FORMAT = "exchange-audit-export/1"


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
    """``checkpoint`` is the newest the log signed; ``witnessed`` the newest of those that a
    quorum of witnesses cosigned (None when no witness was asked for). Every root between
    was recomputed from the same leaves, which proves the newest extends the witnessed."""

    checkpoint: Checkpoint
    note: str
    checkpoints_checked: int
    cosigned_by: list[str] = field(default_factory=list)
    witnessed: Checkpoint | None = None
    witnessed_note: str = ""


def _decode(value: Any, what: str, index: int) -> bytes:
    if not isinstance(value, str):
        raise VerificationFailed(f"{what} is missing", index=index)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or characters that are not ASCII
        raise VerificationFailed(f"{what} is not base64", index=index) from None


def valid_witnesses(note: Note, witnesses: Iterable[Verifier]) -> list[str]:
    """Names of the witnesses with a valid cosignature on ``note``; a key given twice counts
    once."""
    valid: list[str] = []
    counted: set[tuple[str, bytes]] = set()
    for witness in witnesses:
        if (witness.name, witness.key_id) in counted:
            continue
        counted.add((witness.name, witness.key_id))
        for line in note.signed_by(witness):
            try:
                verify_cosignature(note.body, line, witness)
            except NoteError:
                continue
            valid.append(witness.name)
            break
    return valid


ExportLine = str | bytes


def _record(line: ExportLine, what: str) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise VerificationFailed(f"{what} is not JSON: {exc}") from None
    if type(record) is not dict:
        raise VerificationFailed(f"{what} is not a JSON object")
    return record


def _check_events(lines: list[ExportLine], first: int) -> tuple[bytes, tuple[int, str] | None]:
    """The leaves of a run of event lines that should hold leaves ``first``, ``first + 1``...,
    each checked against the leaf the log recorded; stops at the first problem.

    The hot loop of a million-event audit: a plain function over raw lines so that it can
    run in worker processes, with locals and no per-event helper calls.
    """
    leaves = bytearray()
    sha256, a2b, loads = hashlib.sha256, binascii.a2b_base64, orjson.loads
    expected = first
    for line in lines:
        try:
            record = loads(line)
            if record.get("type") != "event":
                return bytes(leaves), (expected, f"unexpected record {record.get('type')!r}")
            index = record.get("index")
            if index != expected:
                if not isinstance(index, int):
                    return bytes(leaves), (expected, "an event has no leaf index")
                if index > expected:
                    return bytes(leaves), (expected, "event missing from the log")
                return bytes(leaves), (index, "a second event claims this leaf")
            leaf = sha256(b"\x00" + a2b(record["event"], strict_mode=True)).digest()
            logged = record.get("leaf_hash")
            if logged is not None and a2b(logged, strict_mode=True) != leaf:
                return bytes(leaves), (index, "the event's bytes do not hash to its logged leaf")
        except (orjson.JSONDecodeError, AttributeError):
            return bytes(leaves), (expected, "the line is not a JSON object")
        except (KeyError, TypeError, ValueError):  # ValueError: binascii's, or not ASCII
            return bytes(leaves), (expected, "the event or its leaf hash is not base64")
        leaves += leaf
        expected += 1
    return bytes(leaves), None


CHUNK_LINES = 16_384
PARALLEL_FROM = 65_536  # events; below this a process pool costs more than it saves


def _chunks(lines: Iterator[ExportLine], limit: int) -> Iterator[list[ExportLine]]:
    taken = 0
    while taken < limit:
        chunk = list(itertools.islice(lines, min(CHUNK_LINES, limit - taken)))
        if not chunk:
            return
        taken += len(chunk)
        yield chunk


def _leaf_runs(
    lines: Iterator[ExportLine], size: int
) -> Iterator[tuple[int, bytes, tuple[int, str] | None]]:
    """(first index, leaves, problem) for consecutive runs of the ``size`` event lines; in
    two or more processes when the log is large, in order either way."""
    chunks = _chunks(lines, size)
    workers = min(os.cpu_count() or 1, 4)
    if size < PARALLEL_FROM or workers < 2:
        first = 0
        for chunk in chunks:
            leaves, problem = _check_events(chunk, first)
            yield first, leaves, problem
            first += len(chunk)
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque[tuple[int, concurrent.futures.Future[Any]]] = collections.deque()
        first = 0
        for chunk in chunks:
            pending.append((first, pool.submit(_check_events, chunk, first)))
            first += len(chunk)
            if len(pending) > workers * 2:  # bounded read-ahead: constant memory
                start, future = pending.popleft()
                yield (start, *future.result())
        while pending:
            start, future = pending.popleft()
            yield (start, *future.result())


def verify_export(
    lines: Iterable[ExportLine],
    *,
    log_key: Verifier,
    state: TrustedState | None = None,
    witnesses: Iterable[Verifier] = (),
    quorum: int = 0,
    progress: Callable[[int], None] | None = None,
) -> VerifiedLog:
    stream = (line for line in lines if len(line) > 2)  # skip blank lines
    header = _record(next(stream, b"{}"), "the first line")
    if header.get("type") != "header" or header.get("format") != EXPORT_FORMAT:
        raise VerificationFailed(f"not an {EXPORT_FORMAT} stream")

    roots: dict[int, bytes] = {}
    latest: tuple[Checkpoint, Note] | None = None
    witnesses = list(witnesses)
    # On a live hub the newest checkpoint has seldom been cosigned yet (witnesses come by
    # every few seconds): the quorum is asked of the newest checkpoint that has it.
    witnessed: tuple[Checkpoint, Note, list[str]] | None = None
    line = next(stream, None)
    while line is not None:
        record = _record(line, "a checkpoint line")
        if record.get("type") != "checkpoint":
            break
        try:
            checkpoint, note = open_checkpoint(str(record.get("note", "")), log_key)
        except NoteError as exc:
            raise VerificationFailed(f"a checkpoint does not verify: {exc}") from None
        if checkpoint.size in roots and roots[checkpoint.size] != checkpoint.root_hash:
            raise VerificationFailed(f"two signed checkpoints of size {checkpoint.size} disagree")
        roots[checkpoint.size] = checkpoint.root_hash
        if latest is None or checkpoint.size >= latest[0].size:
            latest = (checkpoint, note)
        if witnesses and (witnessed is None or checkpoint.size >= witnessed[0].size):
            cosigners = valid_witnesses(note, witnesses)
            if len(cosigners) >= max(quorum, 1):
                witnessed = (checkpoint, note, cosigners)
        line = next(stream, None)
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
    if 0 in roots and roots[0] != merkle.EMPTY_ROOT:
        raise VerificationFailed("the checkpoint of size 0 does not have the empty root")

    events = itertools.chain([line] if line is not None else [], stream)
    tree = merkle.CompactRange()
    last_verified = 0
    for first, leaves, problem in _leaf_runs(events, final.size):
        for offset in range(0, len(leaves), merkle.HASH_SIZE):
            tree.append(leaves[offset : offset + merkle.HASH_SIZE])
            expected = roots.get(tree.size)
            if expected is not None:
                if tree.root() != expected:
                    seen = (
                        "the checkpoint seen before"
                        if state and tree.size == state.size
                        else "its signed checkpoint"
                    )
                    raise VerificationFailed(
                        f"the tree of leaves {last_verified}..{tree.size - 1} does not match "
                        f"{seen} of size {tree.size} (altered, inserted or removed events)",
                        index=last_verified,
                    )
                last_verified = tree.size
        if problem is not None:
            raise VerificationFailed(problem[1], index=problem[0])
        if progress is not None:
            progress(first + len(leaves) // merkle.HASH_SIZE)
    if tree.size < final.size:
        raise VerificationFailed("event missing from the log", index=tree.size)
    if quorum > 0 and witnessed is None:
        raise VerificationFailed(
            f"no signed checkpoint has the {quorum} valid witness cosignature(s) required"
        )
    if quorum > 0 and witnessed and state is not None and witnessed[0].size < state.size:
        # What the auditor trusts already went further than any witness has: the quorum
        # must vouch for at least that much, or a fork after it would pass.
        raise VerificationFailed(
            f"the newest checkpoint with {quorum} witness cosignature(s) has size "
            f"{witnessed[0].size}, below the {state.size} verified before"
        )
    return VerifiedLog(
        checkpoint=final,
        note=final_note.text(),
        checkpoints_checked=len(roots),
        cosigned_by=witnessed[2] if witnessed else [],
        witnessed=witnessed[0] if witnessed else None,
        witnessed_note=witnessed[1].text() if witnessed else "",
    )


@dataclass(frozen=True)
class EventCheck:
    """One event of an evidence bundle, checked: its leaf hash and each hash up to the root
    its proof implies, and whether that root is the signed checkpoint's."""

    index: int
    event: dict[str, Any]
    leaf_hash: bytes
    steps: list[merkle.Step]
    problem: str | None


@dataclass(frozen=True)
class ReceiptCheck:
    """A recipient's signed receipt (in a ``delivery.acknowledged`` event), checked against
    the agency's key as the log had it at the receipt's place in the log."""

    index: int
    agency: str
    delivery: str
    key_id: str
    problem: str | None


@dataclass(frozen=True)
class EvidenceCheck:
    """An evidence bundle checked step by step, every step kept so that a page can show how
    the verdict was reached; ``problems`` is empty when everything verified."""

    checkpoint: Checkpoint | None
    checkpoint_problem: str | None
    events: list[EventCheck]
    key_events: list[EventCheck] = field(default_factory=list)
    receipts: list[ReceiptCheck] = field(default_factory=list)

    @property
    def problems(self) -> list[tuple[int | None, str]]:
        found: list[tuple[int | None, str]] = []
        if self.checkpoint_problem:
            found.append((None, self.checkpoint_problem))
        found += [(e.index, e.problem) for e in self.events if e.problem]
        found += [(e.index, e.problem) for e in self.key_events if e.problem]
        found += [(r.index, r.problem) for r in self.receipts if r.problem]
        return found

    @property
    def proven(self) -> list[dict[str, Any]]:
        """The subject's events, as the log holds them."""
        return [entry.event for entry in self.events]


def _check_entry(
    entry: dict[str, Any], checkpoint: Checkpoint, about: Callable[[dict[str, Any]], str | None]
) -> EventCheck:
    """One proven event: its leaf, its path to the checkpoint's root, and ``about``'s
    objection to what it says (None when it is the kind of event expected)."""
    index = entry.get("index")
    if not isinstance(index, int):
        raise VerificationFailed("an evidence entry has no leaf index")
    canonical = _decode(entry.get("event"), "event bytes", index)
    hashes = entry.get("proof") or []
    if not isinstance(hashes, list):
        raise VerificationFailed("an inclusion proof is not a list", index=index)
    proof = [_decode(p, "proof hash", index) for p in hashes]
    leaf = merkle.leaf_hash(canonical)
    steps: list[merkle.Step] = []
    problem = None
    try:
        steps = merkle.inclusion_path(index, checkpoint.size, leaf, proof)
        reached = steps[-1].result if steps else leaf
        if reached != checkpoint.root_hash:
            problem = f"not in the signed log: the proof leads to {reached.hex()}, not the root"
    except merkle.ProofError as exc:
        problem = f"not in the signed log: {exc}"
    try:
        event = json.loads(canonical)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        event, problem = {}, problem or "the event's bytes are not a JSON object"
    else:
        problem = problem or about(event)
    return EventCheck(index, event, leaf, steps, problem)


def check_evidence(bundle: dict[str, Any], *, log_key: Verifier) -> EvidenceCheck:
    """Check an evidence bundle with nothing but the log's public key, keeping each step:
    the checkpoint's signature, then for each event its leaf hash and the path to the root,
    then each signed receipt against the key history the bundle proves from the log."""
    if not isinstance(bundle, dict):
        return EvidenceCheck(None, "the bundle is not a JSON object", [])
    try:
        checkpoint, _ = open_checkpoint(str(bundle.get("checkpoint", "")), log_key)
    except NoteError as exc:
        return EvidenceCheck(None, f"the bundle's checkpoint does not verify: {exc}", [])
    subject = bundle.get("subject")

    def about_subject(event: dict[str, Any]) -> str | None:
        # The proof holds for the bytes, but they may be about something else: an event
        # moved under this subject is not evidence about it.
        if event.get("subject") != subject:
            return f"the event is about {event.get('subject')!r}, not {subject!r}"
        return None

    def about_a_key(event: dict[str, Any]) -> str | None:
        if event.get("action") not in KEY_ACTIONS or not str(event.get("subject")).startswith(
            "agency:"
        ):
            return f"a key event is a {event.get('action')!r} about {event.get('subject')!r}"
        return None

    events = [_check_entry(e, checkpoint, about_subject) for e in _entries(bundle, "events")]
    key_events = [_check_entry(e, checkpoint, about_a_key) for e in _entries(bundle, "key_events")]
    history = KeyHistory.of([(k.index, k.event) for k in key_events if not k.problem])
    key_events = [
        replace(k, problem=k.problem or history.problems.get(k.index)) for k in key_events
    ]
    receipts = [
        history.check_receipt(e.index, e.event)
        for e in events
        if not e.problem
        and e.event.get("action") == "delivery.acknowledged"
        and _details(e.event).get("receipt_signature")
    ]
    return EvidenceCheck(checkpoint, None, events, key_events, receipts)


def _entries(bundle: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = bundle.get(name) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise VerificationFailed(f"the bundle's {name} is not a list of entries")
    return entries


def _details(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("details")
    return details if isinstance(details, dict) else {}


KEY_ACTIONS = ("signing_key.added", "signing_key.approved", "signing_key.revoked")


@dataclass
class _KeyLife:
    public_key: str
    added: int
    awaiting_approval: bool
    approved: int | None = None
    revoked: int | None = None

    def in_force_at(self, index: int) -> bool:
        approved = not self.awaiting_approval or (
            self.approved is not None and self.approved < index
        )
        return self.added < index and approved and (self.revoked is None or self.revoked > index)


@dataclass
class KeyHistory:
    """The agencies' signing keys as the log recorded them: when each was added, approved
    and revoked, by leaf index. Taken in log order whatever order the bundle lists them
    in; ``problems`` (by leaf index) are events that contradict that order: a key added
    twice, approved or revoked before it was added, an event listed twice."""

    keys: dict[tuple[str, str], _KeyLife]
    problems: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: list[tuple[int, dict[str, Any]]]) -> KeyHistory:
        keys: dict[tuple[str, str], _KeyLife] = {}
        problems: dict[int, str] = {}
        seen: set[int] = set()
        for index, event in sorted(entries, key=lambda entry: entry[0]):
            if index in seen:
                problems[index] = "a key event listed twice"
                continue
            seen.add(index)
            agency = str(event.get("subject", "")).removeprefix("agency:")
            details = _details(event)
            key = (agency, str(details.get("key_id")))
            action = event.get("action")
            life = keys.get(key)
            if action == "signing_key.added":
                if life is not None:
                    problems[index] = f"the key {key[1]} of {agency} added a second time"
                    continue
                keys[key] = _KeyLife(
                    public_key=str(details.get("public_key")),
                    added=index,
                    awaiting_approval=bool(details.get("awaiting_approval")),
                )
            elif life is None:
                problems[index] = f"the key {key[1]} of {agency} changed before it was added"
            elif action == "signing_key.approved":
                life.approved = index if life.approved is None else life.approved
            else:
                life.revoked = index if life.revoked is None else life.revoked
        return cls(keys, problems)

    def check_receipt(self, index: int, event: dict[str, Any]) -> ReceiptCheck:
        details = _details(event)
        agency, delivery = str(details.get("agency")), str(details.get("delivery"))
        key_id = str(details.get("receipt_key_id"))

        def checked(problem: str | None) -> ReceiptCheck:
            return ReceiptCheck(index, agency, delivery, key_id, problem)

        life = self.keys.get((agency, key_id))
        if life is None:
            return checked(f"the receipt's key {key_id} of {agency} is not in the key history")
        if not life.in_force_at(index):
            return checked(f"the key {key_id} of {agency} was not in force when it signed")
        try:
            raw = b64url_decode(life.public_key)
            if jwk_thumbprint(raw) != key_id:
                return checked(f"the key history's key {key_id} is not the key it names")
            Ed25519PublicKey.from_public_bytes(raw).verify(
                b64url_decode(str(details.get("receipt_signature"))),
                receipt_message(delivery, str(details.get("data_hash") or "")),
            )
        except (InvalidSignature, ValueError, binascii.Error):
            return checked(f"the receipt for {delivery} does not verify under key {key_id}")
        return checked(None)


def verify_evidence(bundle: dict[str, Any], *, log_key: Verifier) -> EvidenceCheck:
    """Check an evidence bundle with nothing but the log's public key; fail at the first
    problem."""
    check = check_evidence(bundle, log_key=log_key)
    for index, problem in check.problems:
        raise VerificationFailed(problem, index=index)
    return check
