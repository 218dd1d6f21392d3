"""The hub's private key files: written whole (never half-written, never overwritten),
readable by the hub's own user only, and refused with a clear message otherwise."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from exchange.errors import ConfigurationError
from exchange.i18n import t


def missing(path: Path) -> ConfigurationError:
    return ConfigurationError(
        t(
            "config.invalid",
            problem=f"missing key {path}: run 'exchange init' "
            "or point EXCHANGE_KEY_DIR at the hub's keys",
        )
    )


def read_private(path: Path) -> bytes:
    """The file's bytes, if no one but its owner may read it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            t(
                "config.invalid",
                problem=f"key {path} is readable by others (mode {mode:o}): chmod 600 it",
            )
        )
    return path.read_bytes()


def write_private(path: Path, content: bytes) -> bool:
    """Write a key file whole under a private name, then link it into place; False when
    another process got there first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True
