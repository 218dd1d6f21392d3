"""The Merkle module against every RFC 9162 vector of transparency-dev, and against a
naive MTH at random sizes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev's vectors (Apache-2.0, LICENSE beside them), kept with the tests so that
# a clone of the project alone runs them.
VECTORS = Path(__file__).resolve().parent / "testdata" / "rfc9162"


def vectors(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return [pytest.param(f, id=str(f.relative_to(VECTORS / kind))) for f in files]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


@pytest.mark.parametrize("path", vectors("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [b64(p) for p in case["proof"] or []]
    args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", vectors("consistency"))
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [b64(p) for p in case["proof"] or []]
    args = (case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), proof)
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 2.1.1 writes it."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = largest_power_of_two_below(len(leaves))
    return node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def subtree_source(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    def source(level: int, index: int) -> bytes:
        width = 1 << level
        chunk = leaves[index * width : (index + 1) * width]
        assert len(chunk) == width, "asked for a subtree that is not complete"
        return naive_root(chunk)

    return source


def make_leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"event {i}".encode()) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_proofs_at_random_sizes(size: int, data: st.DataObject) -> None:
    leaves = make_leaves(size)
    source = subtree_source(leaves)
    tree_root = root(source, size)
    assert tree_root == naive_root(leaves)

    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    verify_inclusion(index, size, leaves[index], inclusion_proof(source, index, size), tree_root)

    old = data.draw(st.integers(min_value=1, max_value=size))
    old_root = naive_root(leaves[:old])
    proof = consistency_proof(source, old, size)
    verify_consistency(old, size, old_root, tree_root, proof)
    if proof:
        tampered = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        with pytest.raises(ProofError):
            verify_consistency(old, size, old_root, tree_root, tampered)
    if old < size:
        with pytest.raises(ProofError):
            verify_consistency(
                old, size, naive_root(leaves[: old - 1] or [b"x" * 32]), tree_root, proof
            )


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=600))
def test_compact_range_root_matches_mth(size: int) -> None:
    leaves = make_leaves(size)
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    assert compact.size == size
    assert compact.root() == naive_root(leaves)


def test_inclusion_proof_rejects_index_outside_tree() -> None:
    source = subtree_source(make_leaves(4))
    with pytest.raises(ProofError):
        inclusion_proof(source, 4, 4)
