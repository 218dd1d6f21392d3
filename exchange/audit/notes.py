"""C2SP signed notes, as used by tlog-checkpoint and tlog-cosignature.

A checkpoint is a note whose body is three lines — origin, tree size, base64 root hash —
followed by a blank line and one signature line per signer::

    exchange.example.go.id/log
    1042
    XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=

    — exchange.example.go.id/log AZ3grlgt...
    — witness.bp3mi.go.id/w1 jWbPPwAAAABkGFDL...

A signature line is ``— <name> base64(key id[4] || signature)``. The key id is the first four
bytes of SHA-256(name || 0x0A || type || public key): type 0x01 for the log's own Ed25519
signature, 0x04 for a witness's timestamped ``cosignature/v1``.

Our own code: no maintained Python package implements signed notes; the format is small and
is checked here against the examples in the C2SP documents.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange.crypto import raw_public_bytes

SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
COSIGNATURE_HEADER = "cosignature/v1\n"


class NoteError(ValueError):
    """Raised when a note, a checkpoint or a signature line is malformed or does not verify."""


class KeyType(IntEnum):
    ed25519 = 0x01
    cosignature_v1 = 0x04


def key_id(name: str, key_type: KeyType, raw_public_key: bytes) -> bytes:
    material = name.encode("utf-8") + b"\n" + bytes([key_type]) + raw_public_key
    return hashlib.sha256(material).digest()[:4]


def verifier_key(name: str, key_type: KeyType, raw_public_key: bytes) -> str:
    """The vkey string ``<name>+<hex key id>+<base64(type || public key)>``."""
    encoded = base64.b64encode(bytes([key_type]) + raw_public_key).decode("ascii")
    return f"{name}+{key_id(name, key_type, raw_public_key).hex()}+{encoded}"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_type: KeyType
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.key_type, raw_public_bytes(self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        try:
            name, hex_id, encoded = vkey.strip().split("+", 2)
            material = base64.b64decode(encoded, validate=True)
            key_type = KeyType(material[0])
            public_key = Ed25519PublicKey.from_public_bytes(material[1:])
        except (ValueError, IndexError) as exc:
            raise NoteError(f"not a verifier key: {exc}") from None
        verifier = cls(name, key_type, public_key)
        if verifier.key_id.hex() != hex_id:
            raise NoteError(f"verifier key for {name}: key id {hex_id} does not match the key")
        return verifier


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes

    def body(self) -> str:
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"

    @classmethod
    def parse_body(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint body is origin, size and root hash, each on a line")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("the checkpoint has no origin")
        if not (size_text.isascii() and size_text.isdigit()) or (
            size_text != "0" and size_text.startswith("0")
        ):
            raise NoteError(f"the checkpoint size {size_text!r} is not a decimal number")
        try:
            root_hash = base64.b64decode(root_text, validate=True)
        except ValueError:  # binascii.Error, or characters that are not ASCII
            raise NoteError("the checkpoint root hash is not base64") from None
        if len(root_hash) != 32:
            raise NoteError(f"the checkpoint root hash has {len(root_hash)} bytes, not 32")
        return cls(origin=origin, size=int(size_text), root_hash=root_hash)


@dataclass(frozen=True)
class SignatureLine:
    name: str
    key_id: bytes
    signature: bytes

    def text(self) -> str:
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"

    @classmethod
    def parse(cls, line: str) -> SignatureLine:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].rstrip("\n").rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise NoteError(f"the signature of {name} is not base64") from None
        if not name or len(raw) < 5:
            raise NoteError("a signature line names its signer and carries key id and signature")
        return cls(name=name, key_id=raw[:4], signature=raw[4:])


@dataclass(frozen=True)
class Note:
    body: str
    signatures: tuple[SignatureLine, ...]

    def text(self) -> str:
        return self.body + "\n" + "".join(s.text() for s in self.signatures)

    @classmethod
    def parse(cls, text: str) -> Note:
        body, separator, signature_block = text.partition("\n\n")
        if not separator or not signature_block.endswith("\n"):
            raise NoteError("a note is a body, a blank line and newline-ended signature lines")
        lines = signature_block[:-1].split("\n")
        return cls(body=body + "\n", signatures=tuple(SignatureLine.parse(line) for line in lines))

    def with_signature(self, signature: SignatureLine) -> Note:
        kept = tuple(
            s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id)
        )
        return Note(self.body, (*kept, signature))

    def signed_by(self, verifier: Verifier) -> list[SignatureLine]:
        return [
            s for s in self.signatures if s.name == verifier.name and s.key_id == verifier.key_id
        ]


def sign_checkpoint(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> Note:
    body = checkpoint.body()
    line = SignatureLine(
        name=name,
        key_id=key_id(name, KeyType.ed25519, raw_public_bytes(key.public_key())),
        signature=key.sign(body.encode("utf-8")),
    )
    return Note(body=body, signatures=(line,))


def verify_note(note: Note, signer: Verifier) -> None:
    """Raise unless ``note`` carries a valid Ed25519 (type 0x01) signature by ``signer``."""
    if signer.key_type is not KeyType.ed25519:
        raise NoteError("a note signer's key must be an Ed25519 (type 0x01) verifier key")
    for line in note.signed_by(signer):
        try:
            signer.public_key.verify(line.signature, note.body.encode("utf-8"))
        except InvalidSignature:
            continue
        return
    raise NoteError(f"no valid signature by {signer.name} on the note")


def open_checkpoint(text: str, log_key: Verifier) -> tuple[Checkpoint, Note]:
    """Parse a checkpoint note and check the log's own signature on it."""
    note = Note.parse(text)
    checkpoint = Checkpoint.parse_body(note.body)
    if checkpoint.origin != log_key.name:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {log_key.name!r}")
    verify_note(note, log_key)
    return checkpoint, note


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


def cosign(body: str, name: str, key: Ed25519PrivateKey, *, timestamp: int) -> SignatureLine:
    signature = key.sign(_cosigned_message(body, timestamp))
    return SignatureLine(
        name=name,
        key_id=key_id(name, KeyType.cosignature_v1, raw_public_bytes(key.public_key())),
        signature=struct.pack(">Q", timestamp) + signature,
    )


def verify_cosignature(body: str, line: SignatureLine, witness: Verifier) -> int:
    """The timestamp of a valid cosignature by ``witness`` on ``body``."""
    if witness.key_type is not KeyType.cosignature_v1:
        raise NoteError("a witness key must be a cosignature/v1 (type 0x04) verifier key")
    if (line.name, line.key_id) != (witness.name, witness.key_id):
        raise NoteError(f"the signature line is not by witness {witness.name}")
    if len(line.signature) != 8 + 64:
        raise NoteError("a cosignature is an 8-byte timestamp and a 64-byte signature")
    (timestamp,) = struct.unpack(">Q", line.signature[:8])
    try:
        witness.public_key.verify(line.signature[8:], _cosigned_message(body, timestamp))
    except InvalidSignature:
        raise NoteError(f"the cosignature of {witness.name} does not verify") from None
    return int(timestamp)
