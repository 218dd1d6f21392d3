"""Periodic jobs. Each worker process (and the embedded worker) runs one ticker thread that
enqueues the periodic actors at a fixed interval. Several tickers across processes are
harmless: the jobs are idempotent and the log's integrator takes a lock."""

from __future__ import annotations

import logging
import threading

import dramatiq

logger = logging.getLogger(__name__)


class Ticker:
    def __init__(self, broker: dramatiq.Broker, *, actor_names: list[str], interval_s: float):
        self.broker = broker
        self.actor_names = actor_names
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exchange-ticker", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for name in self.actor_names:
                try:
                    self.broker.get_actor(name).send()
                except Exception:  # the broker is down: readiness shows it; try next tick
                    logger.warning("could not enqueue periodic job", extra={"actor": name})
