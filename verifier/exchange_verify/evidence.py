"""An evidence bundle (``GET /v1/reports/{id}/evidence``, ``GET /v1/audit/evidence``): each
event's inclusion in the signed checkpoint, each event about the subject asked for, and
each recipient's signed receipt checked against that recipient's key as the log recorded
it (added, approved where approval was awaited, not yet revoked) at the receipt's leaf."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from exchange_verify.errors import Failed
from exchange_verify.merkle import leaf_hash, verify_inclusion
from exchange_verify.notes import ED25519, Checkpoint, Key, open_checkpoint

KEY_ACTIONS = ("signing_key.added", "signing_key.approved", "signing_key.revoked")
RECEIPT_DOMAIN = b"exchange-receipt/v1\n"


@dataclass
class EvidenceResult:
    checkpoint: Checkpoint
    events: list[dict[str, Any]]
    receipts: list[dict[str, Any]]


def _b64(value: object, what: str, index: int) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:  # binascii.Error, or characters that are not ASCII
        raise Failed(f"{what} is not base64", index=index) from None


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _proven(entry: object, checkpoint: Checkpoint) -> tuple[int, dict[str, Any]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
        raise Failed("an evidence entry has no leaf index")
    index: int = entry["index"]
    data = _b64(entry.get("event"), "the event", index)
    hashes = entry.get("proof") or []
    if not isinstance(hashes, list):
        raise Failed("an inclusion proof is not a list", index=index)
    proof = [_b64(p, "a proof hash", index) for p in hashes]
    try:
        verify_inclusion(index, checkpoint.size, leaf_hash(data), proof, checkpoint.root)
    except ValueError as exc:
        raise Failed(f"not in the signed log: {exc}", index=index) from None
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise Failed("the event's bytes are not a JSON object", index=index)
    return index, event


def _thumbprint(raw: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK, as the hub names agencies' keys."""
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    members = f'{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}'
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()


def _details(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("details")
    return details if isinstance(details, dict) else {}


def _list(bundle: dict[str, Any], name: str) -> list[Any]:
    entries = bundle.get(name) or []
    if not isinstance(entries, list):
        raise Failed(f"the bundle's {name} is not a list")
    return entries


def verify_evidence(bundle: dict[str, Any], *, log: Key) -> EvidenceResult:
    checkpoint = open_checkpoint(str(bundle.get("checkpoint")), log)
    subject = bundle.get("subject")
    events = []
    for entry in _list(bundle, "events"):
        index, event = _proven(entry, checkpoint)
        if event.get("subject") != subject:
            raise Failed(
                f"the event is about {event.get('subject')!r}, not {subject!r}", index=index
            )
        events.append((index, event))

    # The key history in log order, whatever order the bundle lists it in.
    proven = sorted((_proven(entry, checkpoint) for entry in _list(bundle, "key_events")),
                    key=lambda pair: pair[0])  # fmt: skip
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    seen: set[int] = set()
    for index, event in proven:
        action, about = event.get("action"), str(event.get("subject"))
        if action not in KEY_ACTIONS or not about.startswith("agency:"):
            raise Failed(f"a key event is a {action!r} about {about!r}", index=index)
        if index in seen:
            raise Failed("a key event listed twice", index=index)
        seen.add(index)
        details = _details(event)
        key = (about.removeprefix("agency:"), str(details.get("key_id")))
        if action == "signing_key.added":
            if key in keys:
                raise Failed(f"the key {key[1]} added a second time", index=index)
            keys[key] = {
                "public_key": str(details.get("public_key")),
                "added": index,
                "awaiting": bool(details.get("awaiting_approval")),
                "approved": None,
                "revoked": None,
            }
        elif key not in keys:
            raise Failed(f"the key {key[1]} changed before it was added", index=index)
        else:
            field = "approved" if action == "signing_key.approved" else "revoked"
            keys[key][field] = keys[key][field] if keys[key][field] is not None else index

    receipts = []
    for index, event in events:
        details = _details(event)
        if event.get("action") != "delivery.acknowledged" or not details.get("receipt_signature"):
            continue
        agency, delivery = str(details.get("agency")), str(details.get("delivery"))
        key_id = str(details.get("receipt_key_id"))
        life = keys.get((agency, key_id))
        if life is None:
            raise Failed(
                f"the receipt's key {key_id} of {agency} is not in the key history", index=index
            )
        approved = not life["awaiting"] or (
            life["approved"] is not None and life["approved"] < index
        )
        revoked = life["revoked"] is not None and life["revoked"] < index
        if not (life["added"] < index and approved and not revoked):
            raise Failed(
                f"the key {key_id} of {agency} was not in force when it signed", index=index
            )
        try:
            raw = _b64url(life["public_key"])
            signature = _b64url(str(details.get("receipt_signature")))
        except ValueError:
            raise Failed(f"the receipt for {delivery} is not base64url", index=index) from None
        if len(raw) != 32 or _thumbprint(raw) != key_id:
            raise Failed(f"the logged key {key_id} is not the key it names", index=index)
        message = RECEIPT_DOMAIN + f"{delivery}\n{details.get('data_hash') or ''}\n".encode()
        if not Key("", ED25519, raw).verify(signature, message):
            raise Failed(
                f"the receipt for {delivery} does not verify under key {key_id}", index=index
            )
        receipts.append({"index": index, "agency": agency, "delivery": delivery, "key_id": key_id})
    return EvidenceResult(checkpoint, [event for _, event in events], receipts)
