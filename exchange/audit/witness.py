"""A witness: another agency's process that cosigns the hub's checkpoints, but only after
checking that each one extends the last it cosigned (C2SP tlog-witness semantics). With a
quorum of witnesses, the hub cannot show auditors one log and agencies another."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.audit import merkle
from exchange.audit.notes import Checkpoint, NoteError, Verifier, cosign, open_checkpoint
from exchange.audit.verify import TrustedState, VerificationFailed


@dataclass(frozen=True)
class Cosigned:
    """``fresh`` is False when the checkpoint was the one already cosigned: nothing sent."""

    size: int
    root_hash: bytes
    timestamp: int
    fresh: bool = True


def cosign_latest(
    client: httpx.Client,
    *,
    log_key: Verifier,
    name: str,
    key: Ed25519PrivateKey,
    state_path: Path,
) -> Cosigned:
    """Fetch the hub's checkpoint, prove it consistent with the last one this witness
    cosigned, cosign it and hand the cosignature to the hub. State advances only then. A
    checkpoint already cosigned is left alone: an idle log is not cosigned again."""
    response = client.get("/v1/audit/checkpoint")
    response.raise_for_status()
    try:
        checkpoint, note = open_checkpoint(response.text, log_key)
    except NoteError as exc:
        raise VerificationFailed(f"the hub's checkpoint does not verify: {exc}") from None
    state = TrustedState.load(state_path)
    if state is not None:
        _check_extends(client, state, checkpoint)
        if state.size == checkpoint.size and state.size > 0:
            return Cosigned(size=state.size, root_hash=state.root_hash, timestamp=0, fresh=False)
    timestamp = int(time.time())
    line = cosign(note.body, name, key, timestamp=timestamp)
    posted = client.post(
        "/v1/audit/cosignatures", json={"size": checkpoint.size, "signature": line.text()}
    )
    posted.raise_for_status()
    TrustedState(size=checkpoint.size, root_hash=checkpoint.root_hash, note=note.text()).save(
        state_path
    )
    return Cosigned(size=checkpoint.size, root_hash=checkpoint.root_hash, timestamp=timestamp)


def _check_extends(client: httpx.Client, state: TrustedState, checkpoint: Checkpoint) -> None:
    if checkpoint.size < state.size:
        raise VerificationFailed(
            f"the log was rolled back from size {state.size} to {checkpoint.size}"
        )
    if state.size == 0:
        return
    if checkpoint.size == state.size:
        if checkpoint.root_hash != state.root_hash:
            raise VerificationFailed(f"fork: two different roots for size {state.size}")
        return
    response = client.get(
        "/v1/audit/proof/consistency", params={"from": state.size, "to": checkpoint.size}
    )
    response.raise_for_status()
    proof = [base64.b64decode(h) for h in response.json()["proof"]]
    try:
        merkle.verify_consistency(
            state.size, checkpoint.size, state.root_hash, checkpoint.root_hash, proof
        )
    except merkle.ProofError as exc:
        raise VerificationFailed(
            f"fork: the checkpoint of size {checkpoint.size} does not extend the one of "
            f"size {state.size} cosigned before ({exc})"
        ) from None
