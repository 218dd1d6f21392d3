"""The soak at full size: 10,000 reports through every fault of tests/soak/harness.py (a
worker killed, an API process killed in a bulk body, Redis down 30 s, PostgreSQL restarted,
a subscriber failing for a minute then hanging then gone, the file-drop disk full), then
the accounts: accepted, stored, delivered, repeated, dead, lost (must be 0).

    sudo .venv/bin/python bench/soak.py             # 10,000 reports (root: it mounts a tmpfs)
    sudo .venv/bin/python bench/soak.py --reports 3000

Needs PostgreSQL's server binaries and redis-server (.ci/run installs both).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in tests/

from tests.servers import postgres_bin_dir, redis_executable
from tests.soak.harness import FULL_PLAN, Soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=FULL_PLAN.reports)
    arguments = parser.parse_args()
    postgres_bin, redis_server = postgres_bin_dir(), redis_executable()
    if postgres_bin is None or redis_server is None:
        raise SystemExit("needs PostgreSQL's server binaries and redis-server")
    plan = dataclasses.replace(FULL_PLAN, reports=arguments.reports)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="exchange-soak-") as work,
        Soak(plan, Path(work), postgres_bin, redis_server).running() as soak,
    ):
        tally = soak.run()
    print(f"soak of {plan.reports} reports, {time.monotonic() - started:.0f} s in all")
    print("\n".join(tally.lines()))
    if tally.lost or tally.problems or tally.accepted != tally.stored:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
