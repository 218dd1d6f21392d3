"""Audit log benchmark: integration lag under load, inclusion-proof time and offline
verification at a million events. Prints each figure with its target, and a ratio against
a baseline measured in the same run on the same machine.

    .venv/bin/python bench/audit.py                 # 1,000,000 events (a few minutes)
    .venv/bin/python bench/audit.py --events 100000 # quicker
    .venv/bin/python bench/audit.py --database-url postgresql://...   # on PostgreSQL

Targets (from the audit-log issue): lag <= 1 s; offline verify of 1M events <= 5 s.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
import rfc8785
from sqlalchemy import insert
from sqlmodel import col, select

from exchange import migrations
from exchange.audit.models import AuditEvent, SignedCheckpoint
from exchange.audit.notes import Verifier
from exchange.audit.service import export_lines, inclusion, integrate, record
from exchange.audit.verify import verify_export
from exchange.hub import Hub
from exchange.models import utcnow
from exchange.settings import Settings
from workers.broker import periodic_actors, start_worker


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def build_hub(database_url: str | None, work: Path, **overrides: object) -> Hub:
    url = database_url or f"sqlite:///{work / 'bench.db'}"
    migrations.upgrade(url)
    settings = Settings(database_url=url, key_dir=work / "keys", log_json=False, **overrides)
    return Hub.start(settings)


def measure_lag(hub: Hub, *, rate: int, seconds: float) -> None:
    """Events committed at ``rate`` per second while the worker's ticker integrates them."""
    worker = start_worker(hub.broker, threads=2, periodic=periodic_actors(hub.settings))
    committed: dict[str, float] = {}
    stop = threading.Event()

    def load() -> None:
        interval = 1.0 / rate
        next_at = time.monotonic()
        while not stop.is_set():
            with hub.session() as session:
                event_id = record(session, action="bench.load", subject="bench", actor="bench")
            committed[event_id] = time.time()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    writers = [threading.Thread(target=load) for _ in range(2)]
    for writer in writers:
        writer.start()
    time.sleep(seconds)
    stop.set()
    for writer in writers:
        writer.join()
    time.sleep(hub.settings.audit_interval_s * 4 + 1)  # let the last ones integrate
    worker.stop()

    with hub.session() as session:
        checkpoints = session.exec(
            select(SignedCheckpoint.size, SignedCheckpoint.signed_at).order_by(
                col(SignedCheckpoint.size)
            )
        ).all()
        leaves = dict(
            session.exec(
                select(AuditEvent.id, AuditEvent.leaf_index).where(
                    col(AuditEvent.id).in_(list(committed))
                )
            ).all()
        )
    sizes = [size for size, _ in checkpoints]
    lags = []
    for event_id, at in committed.items():
        index = leaves.get(event_id)
        if index is None:
            continue
        position = bisect.bisect_right(sizes, index)
        lags.append(checkpoints[position][1].timestamp() - at)
    print(
        f"integration lag, {len(lags)} events at {rate * 2}/s,"
        f" ticker {hub.settings.audit_interval_s} s:"
    )
    print(
        f"  p50 {statistics.median(lags) * 1000:.0f} ms  p95 {percentile(lags, 0.95) * 1000:.0f} ms"
        f"  max {max(lags) * 1000:.0f} ms   target <= 1000 ms"
        f"   p95/target = {percentile(lags, 0.95) / 1.0:.2f}"
    )
    print(
        f"  baseline (the ticker's own interval): {hub.settings.audit_interval_s * 1000:.0f} ms;"
        f" p50/baseline = {statistics.median(lags) / hub.settings.audit_interval_s:.2f}"
    )


def fill(hub: Hub, count: int) -> None:
    """``count`` events inserted in bulk, then integrated in large batches."""
    started = time.perf_counter()
    chunk = 50_000
    with hub.session() as session:
        for first in range(0, count, chunk):
            rows = []
            for n in range(first, min(first + chunk, count)):
                now = utcnow()
                document = {
                    "action": "bench.filled",
                    "actor": "bench",
                    "details": {"n": n},
                    "id": uuid.uuid4().hex,
                    "subject": f"report:{n}",
                    "time": now.isoformat(),
                }
                rows.append(
                    {
                        "id": document["id"],
                        "action": document["action"],
                        "subject": document["subject"],
                        "recorded_at": now,
                        "canonical": rfc8785.dumps(document),
                    }
                )
            session.execute(insert(AuditEvent), rows)
    inserted = time.perf_counter()
    while True:
        with hub.session() as session:
            if integrate(session, keyring=hub.keyring, batch_size=200_000) is None:
                break
    print(
        f"filled {count} events: insert {inserted - started:.1f} s,"
        f" integrate {time.perf_counter() - inserted:.1f} s"
    )


def measure_proofs(hub: Hub, count: int, samples: int = 1000) -> None:
    indices = random.Random(7).sample(range(count), samples)
    proof_times, lookup_times = [], []
    with hub.session() as session:
        for index in indices:
            started = time.perf_counter()
            inclusion(session, index=index, size=None)
            proof_times.append(time.perf_counter() - started)
        for index in indices:
            started = time.perf_counter()
            session.exec(select(AuditEvent).where(AuditEvent.leaf_index == index)).first()
            lookup_times.append(time.perf_counter() - started)
    proof_ms = statistics.median(proof_times) * 1000
    lookup_ms = statistics.median(lookup_times) * 1000
    print(f"inclusion proof at {count} events ({samples} random leaves):")
    print(
        f"  p50 {proof_ms:.2f} ms  p95 {percentile(proof_times, 0.95) * 1000:.2f} ms;"
        f" baseline (one event fetched by leaf index) {lookup_ms:.3f} ms;"
        f" ratio {proof_ms / lookup_ms:.1f}"
    )


def measure_verify(hub: Hub, work: Path) -> None:
    export = work / "export.ndjson"
    with hub.session() as session, export.open("w") as sink:
        for line in export_lines(session):
            sink.write(json.dumps(line, separators=(",", ":")) + "\n")
    log_key = Verifier.parse(hub.keyring.log_verifier_key())

    started = time.perf_counter()
    with export.open("rb") as lines:
        result = verify_export(lines, log_key=log_key)
    verify_s = time.perf_counter() - started

    # Baseline: read and parse the same file and hash each event once, nothing else.
    started = time.perf_counter()
    with export.open("rb") as lines:
        for line in lines:
            parsed = orjson.loads(line)
            if parsed.get("type") == "event":
                hashlib.sha256(parsed["event"].encode()).digest()
    baseline_s = time.perf_counter() - started
    size_mb = export.stat().st_size / 1e6
    print(f"offline verify of {result.checkpoint.size} events ({size_mb:.0f} MB export):")
    print(
        f"  {verify_s:.2f} s   target <= 5 s (scaled to this size:"
        f" {5 * result.checkpoint.size / 1_000_000:.2f} s);"
        f" baseline (parse + one hash per event) {baseline_s:.2f} s;"
        f" ratio {verify_s / baseline_s:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=250, help="events/s per writer (2 writers)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: SQLite files)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as scratch:
        work = Path(scratch)
        hub = build_hub(args.database_url, work / "lag")
        try:
            measure_lag(hub, rate=args.rate, seconds=args.seconds)
        finally:
            hub.close()
        # A separate SQLite file for the large log; on PostgreSQL the same database grows.
        big = build_hub(args.database_url, work / "big")
        try:
            fill(big, args.events)
            with big.session() as session:
                size = session.exec(
                    select(SignedCheckpoint.size).order_by(col(SignedCheckpoint.size).desc())
                ).first()
            measure_proofs(big, int(size or 0))
            measure_verify(big, work)
        finally:
            big.close()


if __name__ == "__main__":
    main()
