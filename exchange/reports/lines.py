"""Splitting an NDJSON body into lines as it arrives, in bounded memory and linear time.

Written here because the ways at hand do not bound a line: ``bytes.split`` over a growing
buffer is quadratic when a line never ends, and a line-oriented reader would hold the whole
of an endless line. A line longer than the limit is not kept at all: its bytes are dropped as
they arrive and it is reported as :data:`OVERSIZE`, so the caller can refuse that line alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal

Oversize = Literal["oversize"]
OVERSIZE: Final[Oversize] = "oversize"


class LineSplitter:
    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._dropping = False  # inside a line already known to be too long

    def feed(self, chunk: bytes) -> Iterator[bytes | Oversize]:
        """The lines ``chunk`` completes, blank ones left out."""
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._keep(chunk[start:])
                return
            self._keep(chunk[start:end])
            yield from self._finish()
            start = end + 1

    def close(self) -> Iterator[bytes | Oversize]:
        """The last line, when the body does not end with a newline."""
        yield from self._finish()

    def _keep(self, part: bytes) -> None:
        if self._dropping:
            return
        # One byte of grace: a line of exactly the limit may end in "\r\n".
        if len(self._buffer) + len(part) > self.limit + 1:
            self._dropping = True
            self._buffer.clear()
            return
        self._buffer += part

    def _finish(self) -> Iterator[bytes | Oversize]:
        if self._buffer.endswith(b"\r"):
            del self._buffer[-1:]
        if self._dropping or len(self._buffer) > self.limit:
            self._dropping = False
            yield OVERSIZE
        elif self._buffer.strip():
            yield bytes(self._buffer)
        self._buffer.clear()
