"""Authentication failures, summarised: one audit event per window with counts by reason
and the key ids that were tried, instead of one event per bad request (which would let
anyone with a loop flood the log)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from sqlmodel import Session

from exchange.audit.service import SYSTEM_ACTOR, record

MAX_KEY_IDS = 50


class AuthFailureTally:
    def __init__(self, *, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._reasons: Counter[str] = Counter()
        self._key_ids: set[str] = set()
        self._started = time.time()

    def add(self, *, reason: str, key_id: str | None) -> None:
        with self._lock:
            self._reasons[reason] += 1
            if key_id and len(self._key_ids) < MAX_KEY_IDS:
                self._key_ids.add(key_id)

    def due(self, now: float | None = None) -> bool:
        with self._lock:
            return bool(self._reasons) and (now or time.time()) - self._started >= self.window_s

    def drain(self) -> dict[str, Any] | None:
        """The window's summary, and a fresh window; None when nothing failed."""
        with self._lock:
            if not self._reasons:
                self._started = time.time()
                return None
            summary = {
                "from": int(self._started),
                "until": int(time.time()),
                "counts": dict(sorted(self._reasons.items())),
                "key_ids": sorted(self._key_ids),
            }
            self._reasons.clear()
            self._key_ids.clear()
            self._started = time.time()
            return summary

    def record_summary(self, session: Session) -> bool:
        summary = self.drain()
        if summary is None:
            return False
        record(session, action="auth.failures", subject="hub", actor=SYSTEM_ACTOR, details=summary)
        return True
