"""Sealing: AES-256-GCM with keys that carry an id, so the key-encryption key can rotate.

A sealed value is ``b"S1" || key id (8 bytes) || nonce (12 bytes) || ciphertext+tag``. The
caller names what the value is for (``purpose``, bound as associated data), so a sealed
webhook secret or data key cannot be replayed as another's. Keys live as 32 raw bytes in
``<key dir>/sealing/<creation ns>-<key id>.key`` (0600): names sort by age, the newest
seals, every one unseals.

Rotation (``exchange keys rotate``) adds a newer key file while the hub runs: every process
notices the folder changed the next time it seals (one ``stat``), and lists the folder again
whenever it meets an unknown key id (a rotation can add and rename its file within one tick
of the folder's timestamp, so the timestamp alone cannot tell), so nothing needs a restart
and nothing sealed under any present key becomes unreadable.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange.errors import ConfigurationError, ExchangeError
from exchange.i18n import t
from exchange.keyfiles import missing, read_private, write_private

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
                raise missing(directory / "*.key")
            create_key(key_dir)
        return cls(directory)

    def _reload(self, *, always: bool = False) -> None:
        with self._lock:
            stamp = self.directory.stat().st_mtime_ns
            if stamp == self._stamp and not always:
                return
            files = sorted(self.directory.glob("*.key"))
            self.keys = {bytes.fromhex(key_id_of(path)): _read_key(path) for path in files}
            self.active_id = bytes.fromhex(key_id_of(files[-1]))
            self._stamp = stamp

    @property
    def active_key_id(self) -> str:
        self._reload()
        return self.active_id.hex()

    @property
    def key_ids(self) -> list[str]:
        """Every sealing key still held (older ones open what they sealed), oldest first."""
        self._reload()
        return [key.hex() for key in self.keys]

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
            self._reload(always=True)
        key = self.keys.get(key_id)
        if key is None:
            raise UnsealFailed(t("protection.unseal_failed"))
        try:
            return AESGCM(key).decrypt(
                value[len(MAGIC) + KEY_ID_BYTES : HEADER], value[HEADER:], purpose.encode()
            )
        except InvalidTag:
            raise UnsealFailed(t("protection.unseal_failed")) from None


def key_id_of(path: Path) -> str:
    return path.stem.rsplit("-", 1)[-1]


def create_key(key_dir: Path) -> Path:
    """A new sealing key whose name sorts after every other: it seals from now on."""
    directory = key_dir / SEALING_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    newest = max((int(p.stem.split("-", 1)[0]) for p in directory.glob("*.key")), default=0)
    created = max(time.time_ns(), newest + 1)  # a clock that stepped back still sorts after
    path = directory / f"{created:020d}-{secrets.token_hex(KEY_ID_BYTES)}.key"
    write_private(path, AESGCM.generate_key(bit_length=256))
    return path


def _read_key(path: Path) -> bytes:
    key = read_private(path)
    if len(key) != 32:
        raise ConfigurationError(t("config.invalid", problem=f"key {path} is not 32 bytes"))
    return key
