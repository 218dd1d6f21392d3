"""The hub's own keys: one Ed25519 key signs the audit log's checkpoints, one signs
envelopes, and AES-256-GCM sealing keys (``exchange/protection/sealing.py``) keep stored
secrets unreadable at rest.

They live as PKCS#8 PEM files in ``EXCHANGE_KEY_DIR`` (directory 0700, files 0600). In
``dev`` mode a missing key is generated on first use; in ``production`` only ``exchange init``
creates them, and the hub refuses to start without them. Their public halves are published at
``/.well-known/exchange/keys`` so recipients and auditors can pin them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from exchange.audit.notes import KeyType, key_id, verifier_key
from exchange.crypto import ed25519_jwk, jwk_thumbprint, raw_public_bytes
from exchange.errors import ConfigurationError
from exchange.i18n import t
from exchange.keyfiles import missing, read_private, write_private
from exchange.protection.sealing import Sealer


class KeyUse(StrEnum):
    checkpoint = "checkpoint"
    envelope = "envelope"


KEY_FILES = {KeyUse.checkpoint: "checkpoint-signing.pem", KeyUse.envelope: "envelope-signing.pem"}
# 32 random bytes: the HMAC key that turns NIKs and passport numbers into link digests.
LINKING_KEY_FILE = "person-linking.key"


@dataclass(frozen=True)
class Keyring:
    origin: str
    checkpoint_key: Ed25519PrivateKey
    envelope_key: Ed25519PrivateKey
    sealer: Sealer
    linking_key: bytes

    @classmethod
    def load(cls, key_dir: Path, *, origin: str, create_missing: bool) -> Keyring:
        keys = {
            use: _load_or_create(key_dir / name, create_missing) for use, name in KEY_FILES.items()
        }
        return cls(
            origin=origin,
            checkpoint_key=keys[KeyUse.checkpoint],
            envelope_key=keys[KeyUse.envelope],
            sealer=Sealer.load(key_dir, create_missing=create_missing),
            linking_key=_load_or_create_secret(key_dir / LINKING_KEY_FILE, create_missing),
        )

    def log_verifier_key(self) -> str:
        """The C2SP verifier key auditors pin to check checkpoints."""
        raw = raw_public_bytes(self.checkpoint_key.public_key())
        return verifier_key(self.origin, KeyType.ed25519, raw)

    def public_document(self) -> dict[str, Any]:
        """What ``/.well-known/exchange/keys`` serves: a JWK set, each key with its use; the
        checkpoint key also as a C2SP verifier key for note-verifying tools."""
        checkpoint = raw_public_bytes(self.checkpoint_key.public_key())
        envelope = raw_public_bytes(self.envelope_key.public_key())
        return {
            "keys": [
                {
                    **ed25519_jwk(checkpoint),
                    "kid": jwk_thumbprint(checkpoint),
                    "use": KeyUse.checkpoint.value,
                    "alg": "EdDSA",
                    "note_key_id": key_id(self.origin, KeyType.ed25519, checkpoint).hex(),
                    "note_verifier_key": self.log_verifier_key(),
                },
                {
                    **ed25519_jwk(envelope),
                    "kid": jwk_thumbprint(envelope),
                    "use": KeyUse.envelope.value,
                    "alg": "EdDSA",
                },
            ],
            "origin": self.origin,
        }


def _load_or_create(path: Path, create_missing: bool) -> Ed25519PrivateKey:
    if not path.exists():
        if not create_missing:
            raise missing(path)
        created = Ed25519PrivateKey.generate()
        pem = created.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        if write_private(path, pem):
            return created
        # another process wrote it first: use theirs
    key = load_pem_private_key(read_private(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(
            t("config.invalid", problem=f"key {path} is not an Ed25519 private key")
        )
    return key


def _load_or_create_secret(path: Path, create_missing: bool) -> bytes:
    if not path.exists():
        if not create_missing:
            raise missing(path)
        write_private(path, secrets.token_bytes(32))
    return read_private(path)
