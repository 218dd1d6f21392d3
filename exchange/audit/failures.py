"""Failures summarised, so that no one with a loop can flood the permanent log: instead of
an event per bad request, one event per window with counts.

- Authentication failures: one ``auth.failures`` event per window, counts by reason and the
  key ids that were tried.
- Rejected submissions: one ``report.rejected`` event per window for each submitter (key)
  and distinct error (report type, code, status, pointers), with how many times it happened.
  50,000 identical invalid lines make one event, and a submitter varying its errors makes at
  most ``MAX_DISTINCT_REJECTIONS`` a window, the rest counted together: one submitter cannot
  crowd out the others' distinct errors.

Each process keeps its own tallies and writes them when a window ends and when it stops.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from exchange.audit.service import SYSTEM_ACTOR, record

SUMMARY_WINDOW_S = 60.0
MAX_KEY_IDS = 50
MAX_DISTINCT_REJECTIONS = 20  # per submitting key and window
MAX_SUBMITTERS = 1000  # keys with rejections tracked per window; the rest counted together
MAX_POINTERS = 50
OTHER_ERRORS = "other"  # the code rejections are counted under past the distinct limit


@dataclass(frozen=True)
class Summary:
    action: str
    subject: str
    actor: str
    details: dict[str, Any]


class WindowedTally:
    """A window's worth of counts behind a lock; subclasses say what is counted and how it
    is recorded."""

    def __init__(self, *, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._started = time.time()

    def _empty(self) -> bool:
        raise NotImplementedError

    def _take(self, since: int, until: int) -> list[Summary]:
        """The events to record, emptying the counts."""
        raise NotImplementedError

    def due(self, now: float | None = None) -> bool:
        with self._lock:
            return not self._empty() and (now or time.time()) - self._started >= self.window_s

    def record_summary(self, session: Session) -> bool:
        """Record the window's events, if anything happened in it, and start a new window."""
        with self._lock:
            since, until = int(self._started), int(time.time())
            self._started = time.time()
            events = [] if self._empty() else self._take(since, until)
        for event in events:
            record(
                session,
                action=event.action,
                subject=event.subject,
                actor=event.actor,
                details=event.details,
            )
        return bool(events)


class AuthFailureTally(WindowedTally):
    def __init__(self, *, window_s: float = 60.0) -> None:
        super().__init__(window_s=window_s)
        self._reasons: Counter[str] = Counter()
        self._key_ids: set[str] = set()

    def add(self, *, reason: str, key_id: str | None) -> None:
        with self._lock:
            self._reasons[reason] += 1
            if key_id and len(self._key_ids) < MAX_KEY_IDS:
                self._key_ids.add(key_id)

    def _empty(self) -> bool:
        return not self._reasons

    def _take(self, since: int, until: int) -> list[Summary]:
        summary = {
            "from": since,
            "until": until,
            "counts": dict(sorted(self._reasons.items())),
            "key_ids": sorted(self._key_ids),
        }
        self._reasons.clear()
        self._key_ids.clear()
        return [Summary("auth.failures", "hub", SYSTEM_ACTOR, summary)]


# (agency, actor, report type, error code, status, pointers)
Rejection = tuple[str, str, str | None, str, int, tuple[str, ...]]


class RejectionTally(WindowedTally):
    def __init__(self, *, window_s: float = 60.0) -> None:
        super().__init__(window_s=window_s)
        self._counts: Counter[Rejection] = Counter()
        self._per_submitter: dict[str, int] = {}  # distinct errors counted per key

    def add(
        self,
        *,
        agency_id: str,
        actor: str,
        report_type: str | None,
        code: str,
        status: int,
        pointers: tuple[str, ...],
    ) -> None:
        key: Rejection = (agency_id, actor, report_type, code, status, pointers[:MAX_POINTERS])
        with self._lock:
            if key not in self._counts:
                distinct = self._per_submitter.get(actor, 0)
                if distinct >= MAX_DISTINCT_REJECTIONS or (
                    distinct == 0 and len(self._per_submitter) >= MAX_SUBMITTERS
                ):
                    key = (agency_id, actor, None, OTHER_ERRORS, 0, ())
                if key not in self._counts:
                    self._per_submitter[actor] = distinct + 1
            self._counts[key] += 1

    def _empty(self) -> bool:
        return not self._counts

    def _take(self, since: int, until: int) -> list[Summary]:
        events = [
            Summary(
                "report.rejected",
                f"agency:{agency_id}",
                actor,
                {
                    "type": report_type,
                    "code": code,
                    "status": status,
                    "problems": list(pointers),
                    "count": count,
                    "from": since,
                    "until": until,
                },
            )
            for (agency_id, actor, report_type, code, status, pointers), count in sorted(
                self._counts.items(), key=lambda item: (item[0][:2], str(item[0][2:]))
            )
        ]
        self._counts.clear()
        self._per_submitter.clear()
        return events
