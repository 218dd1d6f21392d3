"""Scale-out figures: what one more process buys, on PostgreSQL and Redis (the production
topology), in one run.

    .venv/bin/python bench/scaleout.py                     # 1, 2 and 4 of each
    .venv/bin/python bench/scaleout.py --seconds 5 --backlog 200

submit   single submissions from wrk (32 connections, ``--seconds``) to 1, 2 and 4 API
         processes (``exchange serve --workers N``); no worker runs, so the API alone is
         measured (the deliveries wait in Redis)
deliver  a backlog of ``--backlog`` reports, each routed to three webhook subscribers on
         loopback, drained by 1, 2 and 4 worker processes (8 threads each): deliveries a
         second from the first envelope received to the last
Each figure is printed with its ratio to one process, measured in the same run (the
baseline). The machine's cores bound both: past them a process adds contention, not speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from delivery import (
    PAYLOAD,
    RECEIVING_AGENCIES,
    SUBMITTER,
    Subscriber,
    processes,
    subscribe_webhooks,
)
from harness import UNLIMITED_CLIENT, demo_tokens, free_port, production_servers, wait_ready
from submit import drive

EXCHANGE = [sys.executable, "-m", "exchange"]
COUNTS = (1, 2, 4)


def submit_rates(env: dict[str, str], work: Path, token: str, seconds: int) -> dict[int, float]:
    rates = {}
    for count in COUNTS:
        port = free_port()
        serve = [*EXCHANGE, "serve", "--port", str(port), "--workers", str(count)]
        with processes([serve], env, work):
            wait_ready(f"http://127.0.0.1:{port}/healthz")
            url = f"http://127.0.0.1:{port}/v1/reports"
            drive(url, token, seconds=1, connections=32, work=work)  # warm-up, not counted
            rates[count] = drive(url, token, seconds=seconds, connections=32, work=work)
    return rates


def deliver_rates(
    env: dict[str, str], work: Path, token: str, backlog: int, subscribers: list[Subscriber]
) -> dict[int, float]:
    rates = {}
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with processes([[*EXCHANGE, "serve", "--port", str(port)]], env, work):
        wait_ready(f"{api}/healthz")
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            for count in COUNTS:
                # The backlog is routed with no worker running: every delivery waits.
                owed = [
                    client.post(
                        f"{api}/v1/reports",
                        json={"type": "village-early-warning", "payload": PAYLOAD},
                    ).json()["id"]
                    for _ in range(backlog)
                ]
                workers = [[*EXCHANGE, "worker", "--threads", "8"] for _ in range(count)]
                with processes(workers, env, work):
                    deadline = time.monotonic() + 300
                    while time.monotonic() < deadline and not all(
                        all(report in s.arrivals for report in owed) for s in subscribers
                    ):
                        time.sleep(0.05)
                # From the first envelope received to the last: the workers' start-up (the
                # imports) is not delivering.
                arrivals = sorted(s.arrivals[r] for s in subscribers for r in owed)
                rates[count] = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return rates


def report(what: str, unit: str, rates: dict[int, float]) -> None:
    baseline = rates[1]
    for count, rate in rates.items():
        print(f"  {what} {count} process(es): {rate:8.0f} {unit}   x{rate / baseline:.2f} of one")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=300, help="reports per delivery round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as scratch, ExitStack() as stack:
        work = Path(scratch)
        env = {
            **os.environ,
            **UNLIMITED_CLIENT,
            "EXCHANGE_WEBHOOK_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "EXCHANGE_KEY_DIR": str(work / "keys"),
            **production_servers(work, stack),
        }
        token = demo_tokens(env, work)[SUBMITTER]
        print(f"on {os.cpu_count()} cores, PostgreSQL and Redis on the same machine")
        print(f"submit: wrk, 32 connections, {args.seconds} s per count (no worker running)")
        report("API", "req/s", submit_rates(env, work, token, args.seconds))
        subscribers = [Subscriber() for _ in RECEIVING_AGENCIES]
        subscribe_webhooks(env, work, subscribers)
        print(f"deliver: {args.backlog} reports x {len(subscribers)} webhooks per count")
        report("worker", "deliveries/s", deliver_rates(env, work, token, args.backlog, subscribers))


if __name__ == "__main__":
    main()
