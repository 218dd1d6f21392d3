"""The soak in its CI size (tests/soak/harness.py says what it does; bench/soak.py runs it
at 10,000 reports)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.servers import postgres_bin_dir, redis_executable, unavailable
from tests.soak.harness import CI_PLAN, Soak

pytestmark = [pytest.mark.e2e, pytest.mark.soak]


def test_nothing_is_lost_through_every_fault(tmp_path: Path) -> None:
    postgres_bin, redis_server = postgres_bin_dir(), redis_executable()
    if postgres_bin is None or redis_server is None:
        unavailable("the soak needs PostgreSQL and redis-server")
    if os.geteuid() != 0:
        unavailable("the soak mounts a small tmpfs for the file drop (root)")
    assert postgres_bin is not None
    assert redis_server is not None
    with Soak(CI_PLAN, tmp_path, postgres_bin, redis_server).running() as soak:
        tally = soak.run()
    print("\n".join(tally.lines()))
    assert tally.problems == []
    assert tally.lost == 0
    assert tally.accepted == tally.stored >= CI_PLAN.reports
    assert tally.delivered + tally.dead == tally.deliveries
    assert tally.dead > 0  # the 410 ended the webhook's owed deliveries, and said why
