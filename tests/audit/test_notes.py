"""Signed notes, checkpoints and cosignatures in the C2SP formats."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.audit.notes import (
    Checkpoint,
    KeyType,
    Note,
    NoteError,
    Verifier,
    cosign,
    open_checkpoint,
    sign_checkpoint,
    verifier_key,
    verify_cosignature,
    verify_note,
)
from exchange.crypto import raw_public_bytes

# The example in the C2SP signed-note specification (golang.org/x/mod/sumdb/note).
SPEC_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SPEC_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_the_specifications_example_note_verifies() -> None:
    note = Note.parse(SPEC_NOTE)
    verify_note(note, Verifier.parse(SPEC_VKEY))
    assert note.text() == SPEC_NOTE


def test_an_altered_note_does_not_verify() -> None:
    note = Note.parse(SPEC_NOTE.replace("answer", "Answer"))
    with pytest.raises(NoteError):
        verify_note(note, Verifier.parse(SPEC_VKEY))


def test_a_verifier_key_with_the_wrong_id_is_refused() -> None:
    with pytest.raises(NoteError, match="does not match"):
        Verifier.parse(SPEC_VKEY.replace("c74f20a3", "c74f20a4"))


def log_key() -> tuple[Ed25519PrivateKey, Verifier]:
    key = Ed25519PrivateKey.generate()
    vkey = verifier_key("hub.test/log", KeyType.ed25519, raw_public_bytes(key.public_key()))
    return key, Verifier.parse(vkey)


def test_checkpoint_round_trip() -> None:
    key, verifier = log_key()
    checkpoint = Checkpoint(origin="hub.test/log", size=1042, root_hash=bytes(range(32)))
    text = sign_checkpoint(checkpoint, "hub.test/log", key).text()
    lines = text.split("\n")
    assert lines[:4] == ["hub.test/log", "1042", checkpoint.body().split("\n")[2], ""]
    assert lines[4].startswith("\u2014 hub.test/log ")
    opened, _ = open_checkpoint(text, verifier)
    assert opened == checkpoint


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n1042\n", "\n1043\n"), ("hub.test/log\n", "other.test/log\n"), ("\n1042\n", "\n01042\n")],
)
def test_checkpoint_tampering_is_refused(old: str, new: str) -> None:
    key, verifier = log_key()
    checkpoint = Checkpoint(origin="hub.test/log", size=1042, root_hash=bytes(32))
    text = sign_checkpoint(checkpoint, "hub.test/log", key).text().replace(old, new, 1)
    with pytest.raises(NoteError):
        open_checkpoint(text, verifier)


def test_cosignature_round_trip_and_tamper() -> None:
    witness_key = Ed25519PrivateKey.generate()
    raw = raw_public_bytes(witness_key.public_key())
    witness = Verifier.parse(verifier_key("witness.test/w1", KeyType.cosignature_v1, raw))
    body = Checkpoint(origin="hub.test/log", size=7, root_hash=bytes(32)).body()
    line = cosign(body, "witness.test/w1", witness_key, timestamp=1_700_000_000)
    assert len(line.signature) == 72
    assert verify_cosignature(body, line, witness) == 1_700_000_000
    with pytest.raises(NoteError):
        verify_cosignature(body.replace("\n7\n", "\n8\n"), line, witness)
    # A cosignature key is not a log key and vice versa: the key ids differ by type.
    assert witness.key_id != Verifier(witness.name, KeyType.ed25519, witness.public_key).key_id
