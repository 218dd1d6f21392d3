"""RFC 9162 Merkle tree hashing and proof verification (sections 2.1.1, 2.1.3.2, 2.1.4.2),
written from the RFC; the hub's own implementation is deliberately not reused."""

from __future__ import annotations

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Tree:
    """Leaves appended one by one; the root at any size, keeping one hash per level."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []  # perfect subtrees, largest first

    def append(self, leaf: bytes) -> None:
        self._peaks.append(leaf)
        size = self.size
        while size & 1:
            right = self._peaks.pop()
            self._peaks[-1] = node_hash(self._peaks[-1], right)
            size >>= 1
        self.size += 1

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        value = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            value = node_hash(peak, value)
        return value


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2; raises ValueError when the proof does not lead to ``root``."""
    if not 0 <= index < size:
        raise ValueError("the leaf index is not below the tree size")
    if len(leaf) != 32 or len(root) != 32:
        raise ValueError("a hash of the proof is not 32 bytes")
    fn, sn, value = index, size - 1, leaf
    for hash_ in proof:
        if sn == 0:
            raise ValueError("the proof is longer than the path")
        if fn & 1 or fn == sn:
            value = node_hash(hash_, value)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            value = node_hash(value, hash_)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is shorter than the path")
    if value != root:
        raise ValueError("the proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 2.1.4.2; raises ValueError unless the tree of ``size2`` extends ``size1``."""
    if not 0 < size1 <= size2:
        # From the empty tree a proof proves nothing: refused, as transparency-dev does.
        raise ValueError("the old size is not between 1 and the new one")
    if size1 == size2:
        if proof or root1 != root2:
            raise ValueError("equal sizes need equal roots and an empty proof")
        return
    if not proof:
        raise ValueError("the proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for hash_ in path[1:]:
        if sn == 0:
            raise ValueError("the proof is longer than the path")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(hash_, fr), node_hash(hash_, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, hash_)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is shorter than the path")
    if fr != root1 or sr != root2:
        raise ValueError("the proof does not lead to both roots")
