"""How much one API key may do, with the ``limits`` package: a sliding window per key, kept
in memory for the embedded hub and in Redis (so shared by every API process) when the broker
is Redis. Two limits use it: requests of any kind, and reports submitted."""

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


class RateLimited(ExchangeError):
    """Raised when a key goes past one of its limits; Retry-After says when to try again."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int, *, what: str) -> None:
        super().__init__(
            t(what, seconds=retry_after_s), headers={"Retry-After": str(retry_after_s)}
        )


def counters(storage_url: str) -> SlidingWindowCounterRateLimiter:
    """The counters every limit of a process shares: ``memory://`` or the Redis broker's URL
    (one connection pool for all of them)."""
    return SlidingWindowCounterRateLimiter(storage_from_string(storage_url))


class KeyRateLimit:
    def __init__(
        self,
        *,
        counters: SlidingWindowCounterRateLimiter,
        namespace: str,
        per_minute: int,
        what: str,
    ) -> None:
        self.limiter = counters
        self.namespace = namespace
        self.item = RateLimitItemPerMinute(per_minute)
        self.what = what  # the catalogue key of the refusal

    def admit(self, key_id: str) -> None:
        """Count one use by ``key_id``; :class:`RateLimited` past the limit. If the counter's
        store cannot be reached the use is admitted: a warning system must not stop because
        Redis is down (the log says so)."""
        try:
            if self.limiter.hit(self.item, self.namespace, key_id):
                return
            reset = self.limiter.get_window_stats(self.item, self.namespace, key_id).reset_time
        except Exception:
            logger.warning("a rate limit could not be checked", exc_info=True)
            return
        raise RateLimited(max(1, math.ceil(reset - time.time())), what=self.what)
