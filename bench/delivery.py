"""Delivery benchmark: push -> receipt latency at a steady submission rate, three webhook
subscribers, for the embedded mode (one `exchange serve`, SQLite, in-process worker) and for
the production topology (PostgreSQL, Redis, an API process and separate worker processes).

    .venv/bin/python bench/delivery.py                    # 200 reports/s for 10 s, both modes
    .venv/bin/python bench/delivery.py --rate 100 --seconds 5 --mode embedded

Latency is from the moment a submission was scheduled (open loop: a slow answer does not
delay the next submission, so queueing shows) to the moment a subscriber's HTTP server has
the envelope. Baseline, measured in the same run: the same envelope POSTed straight from
this process to the same subscriber (what the network and the receiver cost alone).
Target (from the delivery issue): p50 <= 20 ms, p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from harness import (
    UNLIMITED_CLIENT,
    WARNING,
    demo_tokens,
    free_port,
    production_servers,
    wait_ready,
)

PAYLOAD = WARNING
RECEIVING_AGENCIES = ("polda-banten", "bp3mi-banten", "dinsos-banten")
SUBMITTER = "pimpasa-tanjakan-mekar"


class Subscriber:
    """A webhook endpoint that notes when each report's envelope arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                arrived = time.perf_counter()
                subject = orjson.loads(body).get("subject")
                subscriber.arrivals.setdefault(subject, arrived)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cut[49] * 1000, "p95": cut[94] * 1000, "p99": cut[98] * 1000}


def baseline(subscriber: Subscriber, count: int) -> dict[str, float]:
    """The same envelope size POSTed straight to a subscriber, one at a time."""
    body = orjson.dumps({"subject": "baseline", "data": PAYLOAD})
    samples = []
    with httpx.Client() as client:
        for _ in range(count):
            started = time.perf_counter()
            client.post(subscriber.url, content=body)
            samples.append(time.perf_counter() - started)
    return percentiles(samples)


def drive(api: str, token: str, *, rate: float, seconds: float) -> list[tuple[str, float]]:
    """Submit at ``rate`` per second for ``seconds``; (report id, scheduled time) of each."""
    local = threading.local()
    sent: list[tuple[str, float]] = []
    lock = threading.Lock()

    def submit(scheduled: float) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        response = client.post(
            f"{api}/v1/reports", json={"type": "village-early-warning", "payload": PAYLOAD}
        )
        if response.status_code == 202:
            with lock:
                sent.append((response.json()["id"], scheduled))

    total = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.perf_counter() + 0.1
        for n in range(total):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(submit, scheduled)
    return sent


def prepare(env: dict[str, str], work: Path, subscribers: list[Subscriber]) -> tuple[str, str]:
    """Initialise the hub and subscribe three agencies; the submitter's and the hub's token."""
    tokens = demo_tokens(env, work)
    subscribe_webhooks(env, work, subscribers)
    return tokens[SUBMITTER], tokens["hub"]


def subscribe_webhooks(env: dict[str, str], work: Path, subscribers: list[Subscriber]) -> None:
    """One webhook subscription (every report type) per receiving agency."""
    for agency, subscriber in zip(RECEIVING_AGENCIES, subscribers, strict=True):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "exchange",
                "subscription",
                "add",
                agency,
                "--connector",
                "webhook",
                "--config",
                json.dumps({"url": subscriber.url}),
                "--json",
            ],
            env=env,
            check=True,
            capture_output=True,
            cwd=work,
        )


@contextmanager
def processes(commands: list[list[str]], env: dict[str, str], work: Path) -> Iterator[None]:
    running = [
        subprocess.Popen(
            command,
            env=env,
            cwd=work,
            stdout=(work / f"p{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i, command in enumerate(commands)
    ]
    try:
        yield
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(timeout=60)


def measure(
    mode: str, env: dict[str, str], work: Path, args: argparse.Namespace
) -> dict[str, float]:
    subscribers = [Subscriber() for _ in RECEIVING_AGENCIES]
    token, _ = prepare(env, work, subscribers)
    port = free_port()
    exchange = [sys.executable, "-m", "exchange"]
    commands = [[*exchange, "serve", "--port", str(port)]]
    if mode == "redis":
        commands += [[*exchange, "worker"] for _ in range(args.workers)]
    api = f"http://127.0.0.1:{port}"
    with processes(commands, env, work):
        wait_ready(f"{api}/healthz")
        drive(api, token, rate=args.rate, seconds=1)  # warm-up, not counted
        time.sleep(2)
        sent = drive(api, token, rate=args.rate, seconds=args.seconds)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            all(report in s.arrivals for report, _ in sent) for s in subscribers
        ):
            time.sleep(0.2)
    latencies = [
        s.arrivals[report] - scheduled
        for s in subscribers
        for report, scheduled in sent
        if report in s.arrivals
    ]
    expected = len(sent) * len(subscribers)
    figures = percentiles(latencies)
    print(
        f"{mode:>8}: {len(sent)} reports at {args.rate:g}/s x {len(subscribers)} subscribers, "
        f"{len(latencies)}/{expected} delivered; latency ms "
        + "  ".join(f"{k} {v:6.1f}" for k, v in figures.items())
    )
    for subscriber in subscribers:
        subscriber.server.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (redis mode)")
    parser.add_argument("--mode", choices=["embedded", "redis", "both"], default="both")
    args = parser.parse_args()

    reference = Subscriber()
    base = baseline(reference, 2000)
    reference.server.shutdown()
    print(
        "baseline (direct POST to a subscriber): latency ms "
        + "  ".join(f"{k} {v:6.2f}" for k, v in base.items())
    )
    common = {
        **UNLIMITED_CLIENT,
        "EXCHANGE_WEBHOOK_ALLOW_NETWORKS": '["127.0.0.0/8"]',
    }
    results: dict[str, dict[str, float]] = {}
    modes = ["embedded", "redis"] if args.mode == "both" else [args.mode]
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="exchange-bench-") as scratch, ExitStack() as stack:
            work = Path(scratch)
            env = {**os.environ, **common, "EXCHANGE_KEY_DIR": str(work / "keys")}
            if mode == "embedded":
                env["EXCHANGE_DATABASE_URL"] = f"sqlite:///{work / 'hub.db'}"
            else:
                env.update(production_servers(work, stack))
            results[mode] = measure(mode, env, work, args)
    for mode, figures in results.items():
        print(
            f"{mode:>8}: p50 {figures['p50']:.1f} ms (target <= 20, ratio to baseline p50 "
            f"{figures['p50'] / base['p50']:.0f}x), p99 {figures['p99']:.1f} ms (target <= 100)"
        )


if __name__ == "__main__":
    main()
