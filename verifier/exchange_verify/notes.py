"""C2SP signed notes (https://c2sp.org/signed-note), checkpoints (tlog-checkpoint) and
witness cosignatures (tlog-cosignature), as far as an auditor needs them."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange_verify.errors import Failed

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
SIGNATURE_PREFIX = "\u2014 "


@dataclass(frozen=True)
class Key:
    """A verifier key ``name+hex key id+base64(type || Ed25519 public key)``."""

    name: str
    key_type: int
    raw: bytes

    @property
    def key_id(self) -> bytes:
        material = self.name.encode() + b"\n" + bytes([self.key_type]) + self.raw
        return hashlib.sha256(material).digest()[:4]

    @classmethod
    def parse(cls, text: str, *, key_type: int) -> Key:
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            material = base64.b64decode(encoded, validate=True)
        except ValueError:  # binascii.Error is one
            raise Failed(f"not a verifier key: {text[:40]!r}") from None
        if len(material) != 33 or material[0] != key_type:
            kind = "a log (Ed25519)" if key_type == ED25519 else "a witness (cosignature/v1)"
            raise Failed(f"{name}: not {kind} verifier key")
        key = cls(name, key_type, material[1:])
        if key.key_id.hex() != hex_id:
            raise Failed(f"{name}: the key id {hex_id} does not match the key")
        return key

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    body: str
    signatures: tuple[tuple[str, bytes], ...]  # (name, key id || signature)

    def cosigned_by(self, witnesses: list[Key]) -> list[str]:
        """Names of the witnesses with a valid cosignature/v1 on this checkpoint."""
        valid: list[str] = []
        counted: set[bytes] = set()
        for witness in witnesses:
            if witness.key_id in counted:  # one key given twice is one witness
                continue
            counted.add(witness.key_id)
            for name, raw in self.signatures:
                if name != witness.name or raw[:4] != witness.key_id or len(raw) != 4 + 72:
                    continue
                (timestamp,) = struct.unpack(">Q", raw[4:12])
                message = f"cosignature/v1\ntime {timestamp}\n{self.body}".encode()
                if witness.verify(raw[12:], message):
                    valid.append(witness.name)
                    break
        return valid


def open_checkpoint(text: str, log: Key) -> Checkpoint:
    """Parse a checkpoint note and require the log's own Ed25519 signature on it."""
    body, blank, block = text.partition("\n\n")
    if not blank or not block.endswith("\n"):
        raise Failed("a checkpoint note is a body, a blank line and signature lines")
    lines = body.split("\n")
    if len(lines) < 3:
        raise Failed("a checkpoint body is origin, size and root hash")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not (size_text.isascii() and size_text.isdigit()) or (
        size_text != "0" and size_text.startswith("0")
    ):
        raise Failed(f"the checkpoint size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise Failed("the checkpoint's root hash is not base64") from None
    if len(root) != 32:
        raise Failed("the checkpoint's root hash is not 32 bytes")
    if origin != log.name:
        raise Failed(f"the checkpoint is of {origin!r}, not of {log.name!r}")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise Failed("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            signatures.append((name, base64.b64decode(encoded, validate=True)))
        except ValueError:
            raise Failed(f"the signature of {name} is not base64") from None
    signed_body = body + "\n"
    if not any(
        name == log.name and raw[:4] == log.key_id and log.verify(raw[4:], signed_body.encode())
        for name, raw in signatures
    ):
        raise Failed(f"no valid signature by {log.name} on the checkpoint")
    return Checkpoint(origin, int(size_text), root, signed_body, tuple(signatures))
