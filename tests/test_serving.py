"""What a process keeps for its whole life: a serving process sets what start-up built aside
from the cyclic garbage collector (``gc.freeze``), so that its full collections do not walk
it all; an app built for tests does not, since tests start many apps in one process and
would keep each one's garbage. And hubs built one after another share dramatiq's time-limit
watchdog rather than leaving a thread behind each."""

from __future__ import annotations

import gc
import threading

from fastapi.testclient import TestClient

from exchange.app import create_app
from exchange.hub import Hub
from exchange.settings import Settings


def test_only_a_serving_app_freezes_what_start_up_built(settings: Settings) -> None:
    gc.unfreeze()
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings, freeze_after_start=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def watchdogs() -> int:
    return sum(type(thread).__name__ == "_CtypesTimeoutManager" for thread in threading.enumerate())


def test_hubs_share_one_time_limit_watchdog(settings: Settings) -> None:
    """dramatiq's time-limit watchdog thread never stops: one per hub would leave hundreds
    behind in a test run, each waking every second."""
    before = watchdogs()
    for _ in range(3):
        Hub.start(settings).close()
    assert watchdogs() <= max(before, 1)
