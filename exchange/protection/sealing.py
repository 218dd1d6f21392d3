"""Sealing: AES-256-GCM with keys that carry an id, so the key can rotate.

A sealed value is ``b"S1" || key id (8 bytes) || nonce (12 bytes) || ciphertext+tag``. The
caller names what the value is for (``purpose``, bound as associated data), so a sealed
webhook secret cannot be replayed as another subscription's or as anything else. Keys live
as 32 raw bytes in ``<key dir>/sealing/<key id>.key`` (0600); the newest file seals, every
file unseals.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange.errors import ConfigurationError, ExchangeError
from exchange.i18n import t

MAGIC = b"S1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
SEALING_DIR = "sealing"


class UnsealFailed(ExchangeError):
    """Raised when a sealed value names an unknown key or fails authentication."""

    status = 500
    code = "unseal_failed"


@dataclass(frozen=True)
class Sealer:
    keys: dict[bytes, bytes]  # key id -> 32-byte key
    active_id: bytes

    @classmethod
    def load(cls, key_dir: Path, *, create_missing: bool) -> Sealer:
        directory = key_dir / SEALING_DIR
        files = sorted(directory.glob("*.key"), key=lambda p: p.stat().st_mtime_ns)
        if not files:
            if not create_missing:
                raise ConfigurationError(
                    t(
                        "config.invalid",
                        problem=f"no sealing key in {directory}: run 'exchange init'",
                    )
                )
            files = [create_key(key_dir)]
        keys = {bytes.fromhex(path.stem): _read_key(path) for path in files}
        return cls(keys=keys, active_id=bytes.fromhex(files[-1].stem))

    def seal(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_id]).encrypt(nonce, plaintext, purpose.encode())
        return MAGIC + self.active_id + nonce + sealed

    def unseal(self, value: bytes, *, purpose: str) -> bytes:
        if not value.startswith(MAGIC):
            raise UnsealFailed(t("protection.unseal_failed"))
        key_id = value[2 : 2 + KEY_ID_BYTES]
        nonce = value[2 + KEY_ID_BYTES : 2 + KEY_ID_BYTES + NONCE_BYTES]
        key = self.keys.get(key_id)
        if key is None:
            raise UnsealFailed(t("protection.unseal_failed"))
        try:
            return AESGCM(key).decrypt(
                nonce, value[2 + KEY_ID_BYTES + NONCE_BYTES :], purpose.encode()
            )
        except InvalidTag:
            raise UnsealFailed(t("protection.unseal_failed")) from None


def create_key(key_dir: Path) -> Path:
    directory = key_dir / SEALING_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{secrets.token_hex(KEY_ID_BYTES)}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(AESGCM.generate_key(bit_length=256))
        handle.flush()
        os.fsync(handle.fileno())
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
