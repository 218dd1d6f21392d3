"""RFC 9162 Merkle trees over SHA-256: hashing, proofs and their verification.

Our own module: the arithmetic is short, fully specified by RFC 9162 sections 2.1.1-2.1.4,
and checked against every transparency-dev test vector; no permissively licensed Python
library covers proofs from stored subtrees.

Proof *generation* reads hashes through a :class:`SubtreeSource`: the hash of any aligned
perfect subtree (``level``, ``index``) covering leaves ``[index * 2**level, (index+1) *
2**level)``. The log stores exactly those, so a proof costs O(log n) reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """Raised when a proof does not verify; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


SubtreeSource = Callable[[int, int], bytes]
"""(level, index) -> hash of the aligned perfect subtree there."""


def range_hash(source: SubtreeSource, start: int, end: int) -> bytes:
    """MTH of leaves [start, end), for the ranges that occur in the tree's structure."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and start % size == 0:
        return source(size.bit_length() - 1, start // size)
    k = largest_power_of_two_below(size)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end))


def root(source: SubtreeSource, size: int) -> bytes:
    return range_hash(source, 0, size)


def inclusion_proof(source: SubtreeSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size])."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if index < start + k:
            proof.append(range_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(source, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(source: SubtreeSource, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old_size, D[0:new_size])."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end:
        k = largest_power_of_two_below(end - start)
        if m - start <= k:
            proof.append(range_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(source, start, start + k))
            start += k
            complete = False
    if not complete:
        proof.append(range_hash(source, start, end))
    proof.reverse()
    return proof


@dataclass(frozen=True)
class Step:
    """One hash on a proof's way up: the proof's ``sibling`` joined on its ``side`` of the
    running hash gives ``result`` (for a consistency proof, ``old_result`` is the old
    tree's running hash where the step touches it, else None)."""

    sibling: bytes
    side: str  # "left" or "right": where the sibling sits
    result: bytes
    old_result: bytes | None = None


def inclusion_path(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> list[Step]:
    """RFC 9162 2.1.3.2, hash by hash: the steps from ``leaf`` at ``index`` to the root
    ``proof`` implies (the last step's result; the leaf itself in a tree of one)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash has {len(leaf)} bytes, not {HASH_SIZE}")
    fn, sn = index, size - 1
    result = leaf
    steps: list[Step] = []
    for sibling in proof:
        if sn == 0:
            raise ProofError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            steps.append(Step(sibling, "left", result))
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
            steps.append(Step(sibling, "right", result))
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the tree is deep")
    return steps


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that ``proof`` implies for ``leaf`` at ``index``."""
    steps = inclusion_path(index, size, leaf, proof)
    return steps[-1].result if steps else leaf


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    if root_from_inclusion_proof(index, size, leaf, proof) != expected_root:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with that root")


def consistency_path(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, list[Step]]:
    """RFC 9162 2.1.4.2, hash by hash, for ``old_size < new_size``: the hash the path starts
    from and its steps; the last ``old_result`` must be the old root, the last ``result``
    the new one."""
    if old_size > new_size:
        raise ProofError(f"the tree shrank from {old_size} to {new_size}")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    steps: list[Step] = []
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            steps.append(Step(c, "left", sr, old_result=fr))
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
            steps.append(Step(c, "right", sr))
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    return path[0], steps


def reached_roots(start: bytes, steps: Sequence[Step]) -> tuple[bytes, bytes]:
    """The old and the new root a consistency path leads to."""
    old = next((s.old_result for s in reversed(steps) if s.old_result is not None), start)
    return old, steps[-1].result if steps else start


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2. A proof from the empty tree proves nothing and is refused."""
    if old_size == new_size and old_size > 0:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for size {old_size}")
        return
    old_reached, new_reached = reached_roots(*consistency_path(old_size, new_size, old_root, proof))
    if old_reached != old_root:
        raise ProofError(f"the proof does not lead to the old root of size {old_size}")
    if new_reached != new_root:
        raise ProofError(f"the proof does not lead to the new root of size {new_size}")


class CompactRange:
    """The right edge of a growing tree: perfect subtrees, largest first. Appending is O(1)
    amortised and the root at the current size is O(log n), which is how a verifier
    recomputes a log of any size in one pass and constant memory."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []  # perfect subtrees' hashes, largest (leftmost) first

    def append(self, leaf: bytes) -> None:
        # The trailing one-bits of the old size are the subtrees this leaf completes.
        size, stack, value = self.size, self._stack, leaf
        while size & 1:
            value = hashlib.sha256(b"\x01" + stack.pop() + value).digest()
            size >>= 1
        stack.append(value)
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value
