"""Sealing keys: a process adopts a key another process added, however quickly it was added."""

from __future__ import annotations

import os
from pathlib import Path

from exchange.protection.sealing import SEALING_DIR, Sealer, create_key


def test_a_key_added_within_one_timestamp_tick_is_found_on_first_use(tmp_path: Path) -> None:
    running = Sealer.load(tmp_path, create_missing=True)
    folder = tmp_path / SEALING_DIR
    before = folder.stat()
    create_key(tmp_path)  # what `exchange keys rotate` does in another process
    # The folder's timestamp did not move (a coarse clock, or create and rename in one tick).
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))

    sealed_elsewhere = Sealer(folder).seal(b"data key", purpose="report-key")
    assert running.unseal(sealed_elsewhere, purpose="report-key") == b"data key"
