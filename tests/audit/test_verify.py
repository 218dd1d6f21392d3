"""The offline verifier on synthetic exports large enough to run in worker processes."""

from __future__ import annotations

import base64

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.audit import merkle
from exchange.audit.notes import Checkpoint, KeyType, Verifier, sign_checkpoint, verifier_key
from exchange.audit.verify import PARALLEL_FROM, VerificationFailed, verify_export
from exchange.crypto import raw_public_bytes

ORIGIN = "hub.test/log"
SIZE = PARALLEL_FROM + 5_000


def synthetic_export(size: int) -> tuple[list[bytes], Verifier]:
    key = Ed25519PrivateKey.generate()
    tree = merkle.CompactRange()
    events = []
    checkpoints = []
    for index in range(size):
        event = orjson.dumps({"action": "test", "id": f"{index:032x}", "subject": "s"})
        leaf = merkle.leaf_hash(event)
        tree.append(leaf)
        events.append(
            orjson.dumps(
                {
                    "type": "event",
                    "index": index,
                    "leaf_hash": base64.b64encode(leaf).decode(),
                    "event": base64.b64encode(event).decode(),
                }
            )
        )
        if tree.size in (size // 2, size):
            note = sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), ORIGIN, key)
            checkpoints.append(orjson.dumps({"type": "checkpoint", "note": note.text()}))
    header = orjson.dumps({"type": "header", "format": "exchange-audit-export/1", "size": size})
    vkey = verifier_key(ORIGIN, KeyType.ed25519, raw_public_bytes(key.public_key()))
    return [header, *checkpoints, *events], Verifier.parse(vkey)


@pytest.fixture(scope="module")
def large_export() -> tuple[list[bytes], Verifier]:
    return synthetic_export(SIZE)


def test_a_large_clean_export_verifies_in_parallel(
    large_export: tuple[list[bytes], Verifier],
) -> None:
    lines, key = large_export
    seen: list[int] = []
    result = verify_export(lines, log_key=key, progress=seen.append)
    assert result.checkpoint.size == SIZE
    assert result.checkpoints_checked == 2
    assert seen[-1] == SIZE
    assert seen == sorted(seen)


@pytest.mark.parametrize("bad_index", [3, 40_000, SIZE - 1])
def test_an_edited_event_is_named_from_any_worker(
    large_export: tuple[list[bytes], Verifier], bad_index: int
) -> None:
    lines, key = large_export
    first_event = len(lines) - SIZE
    tampered = list(lines)
    record = orjson.loads(tampered[first_event + bad_index])
    record["event"] = base64.b64encode(b'{"forged":true}').decode()
    tampered[first_event + bad_index] = orjson.dumps(record)
    with pytest.raises(VerificationFailed, match="logged leaf") as failure:
        verify_export(tampered, log_key=key)
    assert failure.value.index == bad_index


def test_a_missing_event_is_named(large_export: tuple[list[bytes], Verifier]) -> None:
    lines, key = large_export
    first_event = len(lines) - SIZE
    gapped = lines[: first_event + 50_000] + lines[first_event + 50_001 :]
    with pytest.raises(VerificationFailed, match="missing") as failure:
        verify_export(gapped, log_key=key)
    assert failure.value.index == 50_000


def test_a_truncated_export_is_refused(large_export: tuple[list[bytes], Verifier]) -> None:
    lines, key = large_export
    with pytest.raises(VerificationFailed, match="missing") as failure:
        verify_export(lines[:-10], log_key=key)
    assert failure.value.index == SIZE - 10


def test_garbage_lines_are_refused() -> None:
    lines, key = synthetic_export(10)
    with pytest.raises(VerificationFailed, match="not JSON"):
        verify_export([b"not json", *lines[1:]], log_key=key)
    with pytest.raises(VerificationFailed, match="not a JSON object") as failure:
        verify_export([*lines[:5], b"[1, 2]", *lines[6:]], log_key=key)
    assert failure.value.index == 2
