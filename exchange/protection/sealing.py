"""Sealing: AES-256-GCM with keys that carry an id, so the key-encryption key can rotate.

A sealed value is ``b"S1" || key id (8 bytes) || nonce (12 bytes) || ciphertext+tag``. The
caller names what the value is for (``purpose``, bound as associated data), so a sealed
webhook secret or data key cannot be replayed as another's. Keys live as 32 raw bytes in
``<key dir>/sealing/<key id>.key`` (0600); the newest file seals, every file unseals.

Rotation (``exchange keys rotate``) adds a newer key file while the hub runs: every process
notices the folder changed the next time it seals or meets an unknown key id, and loads it,
so nothing needs a restart and nothing sealed under any present key becomes unreadable.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange.errors import ConfigurationError, ExchangeError
from exchange.i18n import t

MAGIC = b"S1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
SEALING_DIR = "sealing"


class UnsealFailed(ExchangeError):
    """Raised when a sealed value names an unknown key or fails authentication."""

    status = 500
    code = "unseal_failed"


def sealed_key_id(value: bytes) -> str:
    """The id (hex) of the key a value was sealed with."""
    return value[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES].hex()


class Sealer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self.keys: dict[bytes, bytes] = {}
        self.active_id = b""
        self._reload()

    @classmethod
    def load(cls, key_dir: Path, *, create_missing: bool) -> Sealer:
        directory = key_dir / SEALING_DIR
        if not list(directory.glob("*.key")):
            if not create_missing:
                raise ConfigurationError(
                    t(
                        "config.invalid",
                        problem=f"no sealing key in {directory}: run 'exchange init'",
                    )
                )
            create_key(key_dir)
        return cls(directory)

    def _reload(self) -> None:
        with self._lock:
            stamp = self.directory.stat().st_mtime_ns
            if stamp == self._stamp:
                return
            files = sorted(self.directory.glob("*.key"), key=lambda p: p.stat().st_mtime_ns)
            self.keys = {bytes.fromhex(path.stem): _read_key(path) for path in files}
            self.active_id = bytes.fromhex(files[-1].stem)
            self._stamp = stamp

    @property
    def active_key_id(self) -> str:
        self._reload()
        return self.active_id.hex()

    def seal(self, plaintext: bytes, *, purpose: str) -> bytes:
        self._reload()  # one stat(): adopts a key that a rotation just added
        active = self.active_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[active]).encrypt(nonce, plaintext, purpose.encode())
        return MAGIC + active + nonce + sealed

    def unseal(self, value: bytes, *, purpose: str) -> bytes:
        if not value.startswith(MAGIC) or len(value) < HEADER:
            raise UnsealFailed(t("protection.unseal_failed"))
        key_id = value[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
        if key_id not in self.keys:
            self._reload()
        key = self.keys.get(key_id)
        if key is None:
            raise UnsealFailed(t("protection.unseal_failed"))
        try:
            return AESGCM(key).decrypt(
                value[len(MAGIC) + KEY_ID_BYTES : HEADER], value[HEADER:], purpose.encode()
            )
        except InvalidTag:
            raise UnsealFailed(t("protection.unseal_failed")) from None


def create_key(key_dir: Path) -> Path:
    """A new sealing key, newer than every other: it seals from now on."""
    directory = key_dir / SEALING_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{secrets.token_hex(KEY_ID_BYTES)}.key"
    draft = directory / f".{path.name}.tmp"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(AESGCM.generate_key(bit_length=256))
        handle.flush()
        os.fsync(handle.fileno())
    newest = max((p.stat().st_mtime_ns for p in directory.glob("*.key")), default=0)
    if draft.stat().st_mtime_ns <= newest:  # a coarse clock: make it the newest regardless
        os.utime(draft, ns=(newest + 1, newest + 1))
    os.replace(draft, path)  # whole or absent: a process reloading never reads half a key
    return path


def _read_key(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            t(
                "config.invalid",
                problem=f"key {path} is readable by others (mode {mode:o}): chmod 600 it",
            )
        )
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigurationError(t("config.invalid", problem=f"key {path} is not 32 bytes"))
    return key
