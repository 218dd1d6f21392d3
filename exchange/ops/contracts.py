"""The shapes of operator endpoints."""

from __future__ import annotations

from datetime import datetime

from exchange.contracts import RowOut


class ProbeOut(RowOut):
    id: str
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    completed_by: str | None
