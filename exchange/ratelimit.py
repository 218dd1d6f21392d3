"""How many reports one API key may submit, with the ``limits`` package: a sliding window
per key, kept in memory for the embedded hub and in Redis (so shared by every API process)
when the broker is Redis."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from exchange.errors import ExchangeError
from exchange.i18n import t

logger = logging.getLogger(__name__)
NAMESPACE = "exchange-submit"


class RateLimited(ExchangeError):
    """Raised when a key submits more reports than its limit allows; Retry-After says when
    to try again."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            t("report.rate_limited", seconds=retry_after_s),
            headers={"Retry-After": str(retry_after_s)},
        )


class SubmissionLimit:
    def __init__(self, *, per_minute: int, storage_url: str) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_url))

    def admit(self, key_id: str) -> None:
        """Count one submission by ``key_id``; :class:`RateLimited` past the limit. If the
        counter's store cannot be reached the submission is admitted: a warning system must
        not stop taking reports because Redis is down (the log says so)."""
        try:
            if self.limiter.hit(self.item, NAMESPACE, key_id):
                return
            reset = self.limiter.get_window_stats(self.item, NAMESPACE, key_id).reset_time
        except Exception:
            logger.warning("the submission rate limit could not be checked", exc_info=True)
            return
        raise RateLimited(max(1, math.ceil(reset - time.time())))
