"""Overload benchmark: the embedded hub (one `exchange serve`, SQLite, in-process worker,
three webhook subscribers) offered twice its peak submission rate for 30 s, once guarded
(the load shedding of its default settings) and once unguarded (no limit: what the hub did
before it shed load), each on a fresh hub, in the same run.

    .venv/bin/python bench/overload.py                  # peak measured first, 2x for 30 s
    .venv/bin/python bench/overload.py --seconds 10 --factor 3

The peak is what 16 clients sending one submission after another get (closed loop). The
overload is open loop: submissions are sent at their scheduled times whatever the hub
answers, each waiting at most --timeout seconds, as an impatient client would. Printed per
variant: accepted/s and its ratio to the peak, shed/s (503 overloaded), timed out/s, p50
and p99 latency of the accepted, and the time to drain (until every accepted report reached
all three subscribers). Target (from the throughput issue): the guarded hub keeps accepting at about
its peak, answers the excess at once, nothing times out, and the backlog drains.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from delivery import PAYLOAD, Subscriber, percentiles, prepare, processes
from harness import UNLIMITED_CLIENT, free_port, wait_ready

BODY = {"type": "village-early-warning", "payload": PAYLOAD}
SERVER_KEEP_ALIVE_S = 5  # uvicorn's default, which `exchange serve` keeps
UNGUARDED = {
    "EXCHANGE_MAX_CONCURRENT_REQUESTS": "100000",
    "EXCHANGE_MAX_QUEUED_REQUESTS": "0",
}


@dataclass
class Tally:
    accepted: list[tuple[str, float]] = field(default_factory=list)  # (report, latency s)
    shed: int = 0
    timed_out: int = 0
    # The connection failed before an answer (not a timeout); a submission sent whole may
    # have been stored all the same, and is not counted as accepted.
    connection_lost: int = 0
    other: dict[int, int] = field(default_factory=dict)


async def closed_loop(api: str, token: str, *, clients: int, seconds: float) -> float:
    """Accepted submissions a second with ``clients`` sending one after another."""
    deadline = time.perf_counter() + seconds
    accepted = 0

    async def one_client(http: httpx.AsyncClient) -> None:
        nonlocal accepted
        while time.perf_counter() < deadline:
            response = await http.post("/v1/reports", json=BODY)
            accepted += response.status_code == 202

    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        started = time.perf_counter()
        await asyncio.gather(*(one_client(http) for _ in range(clients)))
        return accepted / (time.perf_counter() - started)


async def open_loop(api: str, token: str, *, rate: float, seconds: float, timeout: float) -> Tally:
    tally = Tally()

    async def submit(http: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        try:
            response = await http.post("/v1/reports", json=BODY)
        except httpx.TimeoutException:
            tally.timed_out += 1
            return
        except httpx.TransportError:
            tally.connection_lost += 1
            return
        if response.status_code == 202:
            tally.accepted.append((response.json()["id"], time.perf_counter() - started))
        elif response.status_code == 503 and b'"code":"overloaded"' in response.content:
            tally.shed += 1
        else:
            tally.other[response.status_code] = tally.other.get(response.status_code, 0) + 1

    # A connection idle for as long as uvicorn keeps one (5 s) may be closed by the server
    # just as it is reused, and the request fails with a read error: reuse them for less.
    limits = httpx.Limits(
        max_connections=None,
        max_keepalive_connections=512,
        keepalive_expiry=SERVER_KEEP_ALIVE_S / 2,
    )
    async with httpx.AsyncClient(
        base_url=api,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        limits=limits,
    ) as http:
        start = time.perf_counter()
        tasks = []
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(http)))
        await asyncio.gather(*tasks)
    return tally


@contextmanager
def running_hub(extra: dict[str, str]) -> Iterator[tuple[str, str, list[Subscriber]]]:
    """A fresh embedded hub with three webhook subscribers: its address, the submitter's
    token and the subscribers."""
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as scratch:
        work = Path(scratch)
        env = {
            **os.environ,
            "EXCHANGE_DATABASE_URL": f"sqlite:///{work / 'hub.db'}",
            "EXCHANGE_KEY_DIR": str(work / "keys"),
            **UNLIMITED_CLIENT,
            "EXCHANGE_WEBHOOK_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            **extra,
        }
        subscribers = [Subscriber() for _ in range(3)]
        token, _ = prepare(env, work, subscribers)
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "exchange", "serve", "--port", str(port)]
        try:
            with processes([serve], env, work):
                wait_ready(f"{api}/healthz")
                yield api, token, subscribers
        finally:
            for subscriber in subscribers:
                subscriber.server.shutdown()


def variant(
    name: str, extra: dict[str, str], args: argparse.Namespace, rate: float, peak: float
) -> None:
    with running_hub(extra) as (api, token, subscribers):
        tally = asyncio.run(
            open_loop(api, token, rate=rate, seconds=args.seconds, timeout=args.timeout)
        )
        load_ended = time.monotonic()
        reports = [report for report, _ in tally.accepted]
        deadline = load_ended + args.drain_deadline
        while time.monotonic() < deadline and not all(
            all(r in s.arrivals for r in reports) for s in subscribers
        ):
            time.sleep(0.2)
        drained = time.monotonic() - load_ended
        delivered = sum(r in s.arrivals for s in subscribers for r in reports)
    seconds = args.seconds
    latency = (
        percentiles([latency for _, latency in tally.accepted])
        if len(tally.accepted) > 1
        else {"p50": float("nan"), "p99": float("nan")}
    )
    owed = len(subscribers) * len(reports)
    drain = f"{'drained' if delivered == owed else 'NOT drained'} in {drained:.1f} s"
    print(
        f"{name:>9}: offered {rate:.0f}/s; accepted {len(tally.accepted) / seconds:6.1f}/s "
        f"({len(tally.accepted) / seconds / peak:.2f} of the peak), "
        f"shed {tally.shed / seconds:6.1f}/s, timed out {tally.timed_out / seconds:6.1f}/s"
        + (
            f", connection lost {tally.connection_lost / seconds:.1f}/s"
            if tally.connection_lost
            else ""
        )
        + (f", other {tally.other}" if tally.other else "")
        + f"; accepted latency p50 {latency['p50']:.0f} ms p99 {latency['p99']:.0f} ms; "
        f"delivered {delivered}/{owed}, {drain}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--factor", type=float, default=2.0, help="offered load / peak")
    parser.add_argument("--timeout", type=float, default=10.0, help="a client's patience, s")
    parser.add_argument("--drain-deadline", type=float, default=300.0)
    args = parser.parse_args()
    with running_hub({}) as (api, token, _):
        peak = asyncio.run(closed_loop(api, token, clients=16, seconds=10))
    rate = peak * args.factor
    print(f"peak (16 clients, closed loop, 10 s): {peak:.1f} submissions/s accepted")
    print(f"offered {args.factor:g} x peak = {rate:.0f}/s for {args.seconds:g} s, open loop:")
    variant("guarded", {}, args, rate, peak)
    variant("unguarded", UNGUARDED, args, rate, peak)


if __name__ == "__main__":
    main()
