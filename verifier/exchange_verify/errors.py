"""The one error: what failed, and the leaf index where it did when there is one."""

from __future__ import annotations


class Failed(Exception):
    def __init__(self, reason: str, *, index: int | None = None) -> None:
        super().__init__(f"index {index}: {reason}" if index is not None else reason)
        self.reason = reason
        self.index = index
