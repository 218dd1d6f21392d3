"""Recording events, integrating them into the Merkle tree, signing checkpoints, proofs,
evidence and cosignatures. Functions take the session first and never commit."""

from __future__ import annotations

import base64
import getpass
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import insert, text, update
from sqlmodel import Session, col, select

from exchange.agencies import signatures
from exchange.audit import merkle
from exchange.audit.models import AuditEvent, AuditNode, Cosignature, SignedCheckpoint
from exchange.audit.notes import (
    Checkpoint,
    KeyType,
    Note,
    NoteError,
    SignatureLine,
    Verifier,
    sign_checkpoint,
    verify_cosignature,
)
from exchange.audit.verify import KEY_ACTIONS
from exchange.canonical import canonical_json
from exchange.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from exchange.i18n import t
from exchange.keyring import Keyring
from exchange.models import insert_rows, utcnow

INTEGRATE_ACTOR = "audit.integrate"
# pg_advisory_xact_lock key of the single log writer ("EXCHLOG" folded into 63 bits).
WRITER_LOCK = 0x45584348_4C4F47
INTEGRATION_BATCH = 20_000
SYSTEM_ACTOR = "hub"

JsonValue = Any


def operator_actor() -> str:
    """Who ran a CLI command: the operating-system user, which is all the CLI knows."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"operator:{user}"


def record(
    session: Session,
    *,
    action: str,
    subject: str,
    actor: str,
    details: Mapping[str, JsonValue] | None = None,
) -> str:
    """Record an action in the caller's transaction: it is logged if and only if the action
    commits. ``details`` hold ids, hashes and counts, never payloads or personal data.
    Returns the event's id. Written at once, as a plain row (every submission records two
    events: the ORM's bookkeeping would cost more than the insert)."""
    now = utcnow()
    event_id = uuid.uuid4().hex
    document: dict[str, Any] = {
        "action": action,
        "actor": actor,
        "details": dict(details or {}),
        "id": event_id,
        "subject": subject,
        "time": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    insert_rows(
        session,
        AuditEvent,
        [
            {
                "id": event_id,
                "action": action,
                "subject": subject,
                "recorded_at": now,
                "canonical": canonical_json(document),
                "leaf_index": None,
            }
        ],
    )
    return event_id


# --- the tree ----------------------------------------------------------------------------


class _Nodes:
    """Subtree hashes for the Merkle module: the ones written in this batch, else the table."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.fresh: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        cached = self.fresh.get((level, index))
        if cached is not None:
            return cached
        stored = self.session.get(AuditNode, (level, index))
        if stored is None:
            raise merkle.ProofError(f"the log has no subtree at level {level}, index {index}")
        return stored.hash


def latest_checkpoint(session: Session) -> SignedCheckpoint | None:
    query = select(SignedCheckpoint).order_by(col(SignedCheckpoint.size).desc()).limit(1)
    return session.exec(query).first()


def _take_writer_lock(session: Session) -> bool:
    """Only one integrator at a time, across every process. On PostgreSQL an advisory lock
    held to the end of the transaction; SQLite's BEGIN IMMEDIATE already serialises writers."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": WRITER_LOCK})
    return bool(taken.scalar_one())


def integrate(
    session: Session, *, keyring: Keyring, batch_size: int = INTEGRATION_BATCH
) -> SignedCheckpoint | None:
    """Append committed, not yet integrated events to the tree and sign a checkpoint.

    Returns the new checkpoint, or None when another integrator holds the lock or nothing
    is pending. Before signing, the new root is proven consistent with the last signed one:
    the log never signs two checkpoints that disagree.
    """
    if not _take_writer_lock(session):
        return None
    previous = latest_checkpoint(session)
    size = previous.size if previous else 0
    pending = session.exec(
        select(AuditEvent.seq, AuditEvent.canonical)
        .where(col(AuditEvent.leaf_index).is_(None))
        .order_by(col(AuditEvent.seq))
        .limit(batch_size)
    ).all()
    if not pending and previous is not None:
        return None

    nodes = _Nodes(session)
    assignments = []
    for offset, (seq, canonical) in enumerate(pending):
        index = size + offset
        assignments.append({"seq": seq, "leaf_index": index})
        value, level = merkle.leaf_hash(canonical), 0
        nodes.fresh[(0, index)] = value
        while index & 1:  # a right child completes its parent
            value = merkle.node_hash(nodes(level, index - 1), value)
            level, index = level + 1, index >> 1
            nodes.fresh[(level, index)] = value
    new_size = size + len(pending)
    new_root = merkle.root(nodes, new_size)
    if previous is not None and previous.size > 0 and new_size > previous.size:
        proof = merkle.consistency_proof(nodes, previous.size, new_size)
        merkle.verify_consistency(previous.size, new_size, previous.root_hash, new_root, proof)

    if assignments:
        session.execute(update(AuditEvent), assignments)
        session.execute(
            insert(AuditNode),
            [{"level": lv, "index": ix, "hash": h} for (lv, ix), h in nodes.fresh.items()],
        )
    note = sign_checkpoint(
        Checkpoint(origin=keyring.origin, size=new_size, root_hash=new_root),
        keyring.origin,
        keyring.checkpoint_key,
    )
    checkpoint = SignedCheckpoint(size=new_size, root_hash=new_root, note=note.text())
    session.add(checkpoint)
    session.flush()
    return checkpoint


# --- reading the log ---------------------------------------------------------------------


class LogEmpty(NotFound):
    """Raised when the log has no signed checkpoint yet."""

    code = "log_empty"


def current_checkpoint(session: Session) -> SignedCheckpoint:
    checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        raise LogEmpty(t("audit.no_checkpoint"))
    return checkpoint


def signed_checkpoint(session: Session, size: int) -> SignedCheckpoint:
    checkpoint = session.get(SignedCheckpoint, size)
    if checkpoint is None:
        raise NotFound(t("audit.checkpoint_not_found", size=size))
    return checkpoint


def checkpoint_with_cosignatures(session: Session, checkpoint: SignedCheckpoint) -> str:
    lines = session.exec(
        select(Cosignature.signature_line)
        .where(Cosignature.checkpoint_size == checkpoint.size)
        .order_by(col(Cosignature.witness_name))
    )
    return _cosigned_note(checkpoint.note, lines)


def _cosigned_note(note_text: str, signature_lines: Iterable[str]) -> str:
    note = Note.parse(note_text)
    for line in signature_lines:
        note = note.with_signature(SignatureLine.parse(line.rstrip("\n")))
    return note.text()


def _bad_range(message: str, parameter: str) -> InvalidInput:
    return InvalidInput.at(t("audit.bad_range", reason=message), f"/{parameter}", location="query")


def _checked_size(session: Session, size: int | None, parameter: str) -> int:
    latest = current_checkpoint(session)
    if size is None:
        return latest.size
    if not 0 < size <= latest.size:
        raise _bad_range(f"{parameter} must be between 1 and {latest.size}", parameter)
    return size


def event_leaf_index(session: Session, event_id: str) -> int:
    event = session.exec(select(AuditEvent).where(AuditEvent.id == event_id)).first()
    if event is None:
        raise NotFound(t("audit.event_not_found", event=event_id))
    if event.leaf_index is None:
        raise Conflict(t("audit.event_pending", event=event_id))
    return event.leaf_index


def inclusion(session: Session, *, index: int, size: int | None) -> dict[str, Any]:
    tree_size = _checked_size(session, size, "size")
    if not 0 <= index < tree_size:
        raise _bad_range(f"index must be below the tree size {tree_size}", "index")
    nodes = _Nodes(session)
    return {
        "index": index,
        "size": tree_size,
        "leaf_hash": _b64(nodes(0, index)),
        "proof": [_b64(h) for h in merkle.inclusion_proof(nodes, index, tree_size)],
    }


def consistency(session: Session, *, old_size: int, new_size: int | None) -> dict[str, Any]:
    tree_size = _checked_size(session, new_size, "to")
    if not 0 < old_size <= tree_size:
        raise _bad_range(f"from must be between 1 and {tree_size}", "from")
    nodes = _Nodes(session)
    proof = merkle.consistency_proof(nodes, old_size, tree_size)
    return {"from": old_size, "to": tree_size, "proof": [_b64(h) for h in proof]}


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


MAX_EVENTS_PER_PAGE = 1000


def events(session: Session, *, start: int, end: int) -> list[dict[str, Any]]:
    size = current_checkpoint(session).size
    if not 0 <= start < end or end - start > MAX_EVENTS_PER_PAGE:
        raise _bad_range(f"need 0 <= start < end and at most {MAX_EVENTS_PER_PAGE} events", "end")
    return [
        {
            "index": index,
            "id": event_id,
            "leaf_hash": _b64(logged) if logged is not None else None,
            "event": _b64(canonical),
            "decoded": json.loads(canonical),
        }
        for index, event_id, canonical, logged in _with_logged_leaves(
            session, start=start, end=min(end, size)
        )
    ]


def _with_logged_leaves(
    session: Session, *, start: int, end: int
) -> Iterator[tuple[int, str, bytes, bytes | None]]:
    """(leaf index, event id, event bytes, logged leaf hash) for leaves [start, end); the
    logged hash is None where the tree has none, a sign of tampering."""
    rows = session.exec(
        select(AuditEvent.leaf_index, AuditEvent.id, AuditEvent.canonical, AuditNode.hash)
        .join(
            AuditNode,
            (col(AuditNode.level) == 0) & (col(AuditNode.index) == col(AuditEvent.leaf_index)),
            isouter=True,
        )
        .where(col(AuditEvent.leaf_index) >= start, col(AuditEvent.leaf_index) < end)
        .order_by(col(AuditEvent.leaf_index))
    )
    for index, event_id, canonical, logged in rows:
        yield int(index or 0), event_id, canonical, logged


def evidence(session: Session, *, subject: str) -> dict[str, Any]:
    """Everything an auditor needs to verify, offline, what the log says about ``subject``:
    its events (canonical bytes), their inclusion proofs, and the signed checkpoint they
    prove into. Events recorded but not yet integrated are listed as pending.

    When a recipient acknowledged with a signed receipt, the history of that agency's
    signing keys (added, approved, revoked: events of the same log, with their proofs)
    comes too, so that the receipt can be checked against the key in force when it was
    given, from the log itself rather than from what the hub says today."""
    checkpoint = current_checkpoint(session)
    nodes = _Nodes(session)
    entries, pending, receipt_agencies = [], [], set()
    for event in session.exec(
        select(AuditEvent).where(AuditEvent.subject == subject).order_by(col(AuditEvent.seq))
    ):
        if event.leaf_index is None or event.leaf_index >= checkpoint.size:
            pending.append(event.id)
            continue
        entries.append(_proven(nodes, event.leaf_index, event.canonical, checkpoint.size))
        if event.action == "delivery.acknowledged":
            details = json.loads(event.canonical).get("details", {})
            if details.get("receipt_signature"):
                receipt_agencies.add(str(details.get("agency")))
    key_events = session.exec(
        select(AuditEvent.leaf_index, AuditEvent.canonical)
        .where(
            col(AuditEvent.subject).in_([f"agency:{agency}" for agency in receipt_agencies]),
            col(AuditEvent.action).in_(KEY_ACTIONS),
            col(AuditEvent.leaf_index) < checkpoint.size,
        )
        .order_by(col(AuditEvent.leaf_index))
    )
    return {
        "subject": subject,
        "checkpoint": checkpoint_with_cosignatures(session, checkpoint),
        "events": entries,
        "key_events": [
            _proven(nodes, index, canonical, checkpoint.size)
            for index, canonical in key_events
            if index is not None  # the query asks for integrated ones; None never comes
        ],
        "pending": pending,
    }


def _proven(nodes: _Nodes, index: int, canonical: bytes, size: int) -> dict[str, Any]:
    return {
        "index": index,
        "event": _b64(canonical),
        "proof": [_b64(h) for h in merkle.inclusion_proof(nodes, index, size)],
    }


def export_lines(session: Session, *, chunk: int = 5000) -> Iterator[dict[str, Any]]:
    """The log as one stream: a header, every checkpoint (oldest first, each with the
    witnesses' cosignatures it has), then every integrated event up to the latest
    checkpoint with its logged leaf."""
    latest = current_checkpoint(session)
    yield {"type": "header", "format": "exchange-audit-export/1", "size": latest.size}
    # Only checkpoints up to the one the header names: on a live hub newer ones are signed
    # while the export streams, and their events would be missing from it.
    rows = session.exec(
        select(SignedCheckpoint.size, SignedCheckpoint.note, Cosignature.signature_line)
        .join(
            Cosignature,
            col(Cosignature.checkpoint_size) == col(SignedCheckpoint.size),
            isouter=True,
        )
        .where(col(SignedCheckpoint.size) <= latest.size)
        .order_by(col(SignedCheckpoint.size), col(Cosignature.witness_name))
    )
    for (_size, note), group in itertools.groupby(rows, key=lambda row: (row[0], row[1])):
        lines = [line for _, _, line in group if line is not None]
        yield {"type": "checkpoint", "note": _cosigned_note(note, lines)}
    start = 0
    while start < latest.size:
        end = min(start + chunk, latest.size)
        for index, _event_id, canonical, logged in _with_logged_leaves(
            session, start=start, end=end
        ):
            yield {
                "type": "event",
                "index": index,
                "leaf_hash": _b64(logged) if logged is not None else None,
                "event": _b64(canonical),
            }
        start = end


# --- witnesses -----------------------------------------------------------------------------


def export_ndjson(open_session: Callable[[], AbstractContextManager[Session]]) -> Iterator[bytes]:
    """:func:`export_lines` as NDJSON bytes, read in a session of its own: a streamed answer
    outlives the request that asked for it."""
    with open_session() as session:
        for record in export_lines(session):
            yield json.dumps(record, separators=(",", ":")).encode() + b"\n"


def add_cosignature(
    session: Session, *, agency_id: str, size: int, signature_line: str
) -> Cosignature:
    """Store a witness's cosignature on the checkpoint of ``size``, after checking it with
    the witness agency's signing keys in force. A witness name belongs to the first key
    that cosigned under it: another key (of any agency) cosigning under that name is
    refused, so no one can replace a witness's cosignatures (docs/security.md says what
    remains: claiming a name no one has used yet)."""
    checkpoint = signed_checkpoint(session, size)
    try:
        line = SignatureLine.parse(signature_line.rstrip("\n"))
    except NoteError as exc:
        raise _invalid_cosignature(str(exc)) from None
    body = Note.parse(checkpoint.note).body
    for key in signatures.keys_in_force(session, agency_id=agency_id):
        witness = Verifier(line.name, KeyType.cosignature_v1, key.public_key)
        if witness.key_id != line.key_id:
            continue
        try:
            timestamp = verify_cosignature(body, line, witness)
        except NoteError as exc:
            raise _invalid_cosignature(str(exc)) from None
        _claim_witness_name(session, name=line.name, agency_id=agency_id, key_id=key.id)
        existing = session.exec(
            select(Cosignature).where(
                Cosignature.checkpoint_size == size, Cosignature.witness_name == line.name
            )
        ).first()
        cosignature = existing or Cosignature(
            checkpoint_size=size,
            witness_agency=agency_id,
            witness_name=line.name,
            witness_key_id=key.id,
            signature_line=line.text(),
            cosigned_at=timestamp,
        )
        cosignature.signature_line = line.text()
        cosignature.cosigned_at = timestamp
        session.add(cosignature)
        session.flush()
        return cosignature
    raise PermissionDenied(t("audit.unknown_witness_key", agency=agency_id))


def _claim_witness_name(session: Session, *, name: str, agency_id: str, key_id: str) -> None:
    """Refuse a cosignature under a name another key (or agency) already cosigned with."""
    taken = session.exec(
        select(Cosignature)
        .where(
            Cosignature.witness_name == name,
            (col(Cosignature.witness_agency) != agency_id)
            | (
                col(Cosignature.witness_key_id).is_not(None)
                & (Cosignature.witness_key_id != key_id)
            ),
        )
        .limit(1)
    ).first()
    if taken is not None:
        raise Conflict(t("audit.witness_name_taken", name=name))


def _invalid_cosignature(reason: str) -> InvalidInput:
    return InvalidInput.at(t("audit.bad_cosignature", reason=reason), "/signature")
