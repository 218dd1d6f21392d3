"""A serving process sets what start-up built aside from the cyclic garbage collector
(``gc.freeze``), so that its full collections do not walk it all; an app built for tests
does not, since tests start many apps in one process and would keep each one's garbage."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from exchange.app import create_app
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
