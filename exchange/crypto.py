"""Small encodings the hub's keys share: base64url, RFC 7638 JWK thumbprints of Ed25519 keys,
and what a recipient's signed receipt signs."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def ed25519_jwk(raw_public_key: bytes) -> dict[str, str]:
    """The RFC 8037 JWK of an Ed25519 public key."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public_key)}


def jwk_thumbprint(raw_public_key: bytes) -> str:
    """RFC 7638 thumbprint: SHA-256 over the JWK's required members, sorted, no spaces."""
    members = json.dumps(ed25519_jwk(raw_public_key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(members.encode("utf-8")).digest())


RECEIPT_DOMAIN = b"exchange-receipt/v1\n"


def receipt_message(delivery_id: str, data_hash: str) -> bytes:
    """What a signed receipt signs: a domain tag, the envelope id and the hash of the data
    received (the envelope's ``datahash``)."""
    return RECEIPT_DOMAIN + f"{delivery_id}\n{data_hash}\n".encode()
