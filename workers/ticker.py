"""Periodic jobs. Each worker process (and the embedded worker) runs one ticker thread that
enqueues each periodic actor at its own interval. Several tickers across processes are
harmless: the jobs are idempotent, the log's integrator takes a lock, and a delivery the
sweeper enqueues twice is claimed once."""

from __future__ import annotations

import logging
import threading
import time

import dramatiq

logger = logging.getLogger(__name__)


class Ticker:
    def __init__(self, broker: dramatiq.Broker, *, intervals: dict[str, float]):
        self.broker = broker
        self.intervals = intervals
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exchange-ticker", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        due = {name: time.monotonic() + interval for name, interval in self.intervals.items()}
        while not self._stop.wait(max(0.0, min(due.values()) - time.monotonic())):
            now = time.monotonic()
            for name, moment in due.items():
                if moment > now:
                    continue
                due[name] = now + self.intervals[name]
                try:
                    self.broker.get_actor(name).send()
                except Exception:  # the broker is down: readiness shows it; try next tick
                    logger.warning("could not enqueue periodic job", extra={"actor": name})
