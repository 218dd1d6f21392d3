"""An exported log (``exchange audit export``, ``GET /v1/audit/export``): every leaf
recomputed from the event bytes, the root at every signed checkpoint, the witnesses' quorum
on the newest checkpoint that has it, and growth from the checkpoint this auditor saw last."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from exchange_verify.errors import Failed
from exchange_verify.merkle import EMPTY_ROOT, Tree, leaf_hash
from exchange_verify.notes import Checkpoint, Key, open_checkpoint

FORMAT = "exchange-audit-export/1"


@dataclass
class Seen:
    """The last checkpoint an auditor accepted (the state file): size and root."""

    size: int
    root: bytes


@dataclass
class LogResult:
    checkpoint: Checkpoint
    checkpoints: int
    witnessed: Checkpoint | None = None
    cosigned_by: list[str] = field(default_factory=list)


def _object(line: str | bytes, what: str) -> dict[str, object]:
    try:
        record = json.loads(line)
    except ValueError:
        raise Failed(f"{what} is not JSON") from None
    if not isinstance(record, dict):
        raise Failed(f"{what} is not a JSON object")
    return record


def verify_log(
    lines: Iterable[str | bytes],
    *,
    log: Key,
    witnesses: list[Key] | None = None,
    quorum: int = 0,
    seen: Seen | None = None,
    also: Checkpoint | None = None,
) -> LogResult:
    """Verify an export; ``also`` is a checkpoint from elsewhere (a witness, an agency) that
    must be a checkpoint of this very log."""
    stream = iter(line for line in lines if line.strip())
    header = _object(next(stream, "{}"), "the first line")
    if header.get("type") != "header" or header.get("format") != FORMAT:
        raise Failed(f"not an {FORMAT} export")
    roots: dict[int, bytes] = {}
    newest: Checkpoint | None = None
    witnessed: tuple[Checkpoint, list[str]] | None = None  # the newest with the quorum
    record = _object(next(stream, "{}"), "a line")
    while record.get("type") == "checkpoint":
        checkpoint = open_checkpoint(str(record.get("note")), log)
        if roots.setdefault(checkpoint.size, checkpoint.root) != checkpoint.root:
            raise Failed(f"two signed checkpoints of size {checkpoint.size} disagree")
        if newest is None or checkpoint.size >= newest.size:
            newest = checkpoint
        cosigners = checkpoint.cosigned_by(witnesses or [])
        newer = witnessed is None or checkpoint.size >= witnessed[0].size
        if cosigners and len(cosigners) >= quorum and newer:
            witnessed = (checkpoint, cosigners)
        record = _object(next(stream, "{}"), "a line")
    if newest is None:
        raise Failed("the export holds no signed checkpoint")
    for name, other in (("the checkpoint seen before", seen), ("the checkpoint given", also)):
        if other is None:
            continue
        size, root = (other.size, other.root)
        if size > newest.size:
            raise Failed(f"{name} has size {size}, beyond the log's newest ({newest.size})")
        if roots.setdefault(size, root) != root:
            raise Failed(f"fork: {name} has another root for size {size} than the log")
    if roots.get(0, EMPTY_ROOT) != EMPTY_ROOT:
        raise Failed("the checkpoint of size 0 does not have the empty root")

    tree = Tree()
    checked_from = 0
    while tree.size < newest.size:
        if record.get("type") != "event":
            raise Failed("event missing from the log", index=tree.size)
        index = record.get("index")
        if index != tree.size:
            raise Failed("events out of order or missing", index=tree.size)
        try:
            leaf = leaf_hash(base64.b64decode(str(record.get("event")), validate=True))
            logged = record.get("leaf_hash")
            if logged is not None and base64.b64decode(str(logged), validate=True) != leaf:
                raise Failed("the event's bytes do not hash to its logged leaf", index=index)
        except ValueError:  # binascii.Error, or characters that are not ASCII
            raise Failed("the event or its leaf hash is not base64", index=index) from None
        tree.append(leaf)
        expected = roots.get(tree.size)
        if expected is not None:
            if tree.root() != expected:
                raise Failed(
                    f"the leaves {checked_from}..{tree.size - 1} do not give the signed root "
                    f"of size {tree.size}: events altered, inserted or removed",
                    index=checked_from,
                )
            checked_from = tree.size
        line = next(stream, None)
        if line is None:
            break
        record = _object(line, "an event line")
    if tree.size < newest.size:
        raise Failed("event missing from the log", index=tree.size)
    if quorum > 0 and witnessed is None:
        raise Failed(f"no signed checkpoint has the {quorum} valid witness cosignature(s) required")
    if quorum > 0 and witnessed and seen is not None and witnessed[0].size < seen.size:
        raise Failed(
            f"the newest checkpoint with {quorum} witness cosignature(s) has size "
            f"{witnessed[0].size}, below the {seen.size} verified before"
        )

    return LogResult(
        checkpoint=newest,
        checkpoints=len(roots),
        witnessed=witnessed[0] if witnessed else None,
        cosigned_by=witnessed[1] if witnessed else [],
    )
