"""Checking an agency's Ed25519 signatures (signed reports, signed receipts, witness
cosignatures): which of its keys are in force, and the check itself, in one place.

A module of its own, below the service: the audit log checks cosignatures with it, and the
agencies service records its changes in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from exchange.agencies.models import SigningKey
from exchange.crypto import b64url_decode


class UnknownSigningKey(Exception):
    """Raised when a signature names a key that is not one of the agency's keys in force."""


class WrongSignature(Exception):
    """Raised when a signature does not verify under the key it names."""


@dataclass(frozen=True)
class VerifyingKey:
    id: str
    public_key: Ed25519PublicKey


def _in_force(agency_id: str, key_id: str | None = None) -> SelectOfScalar[SigningKey]:
    """Registered, approved where the agency requires it, not revoked."""
    query = select(SigningKey).where(
        SigningKey.agency_id == agency_id,
        col(SigningKey.revoked_at).is_(None),
        col(SigningKey.approved_at).is_not(None),
    )
    return query if key_id is None else query.where(SigningKey.id == key_id)


def _verifying(key: SigningKey) -> VerifyingKey:
    return VerifyingKey(key.id, Ed25519PublicKey.from_public_bytes(b64url_decode(key.public_key)))


def keys_in_force(session: Session, *, agency_id: str) -> list[VerifyingKey]:
    """The agency's signing keys that verify signatures now."""
    return [_verifying(key) for key in session.exec(_in_force(agency_id))]


def verify(
    session: Session, *, agency_id: str, key_id: str, signature: bytes, message: bytes
) -> None:
    """Check a signature by one of the agency's keys: :class:`UnknownSigningKey` when
    ``key_id`` names no key of the agency in force, :class:`WrongSignature` when it does not
    verify."""
    found = session.exec(_in_force(agency_id, key_id)).first()
    if found is None:
        raise UnknownSigningKey(key_id)
    try:
        _verifying(found).public_key.verify(signature, message)
    except InvalidSignature:
        raise WrongSignature(key_id) from None
