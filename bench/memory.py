"""Memory of the API process with a large store: the resident set (RSS) of `exchange serve`
(embedded SQLite, in-process worker) holding ``--reports`` reports (default 1,000,000), after
start-up and after a mixed load, and its peak.

    .venv/bin/python bench/memory.py                   # 1,000,000 reports
    .venv/bin/python bench/memory.py --reports 100000

The reports are written straight into the database, as rows the hub itself would write for
a village early warning routed to the police (each encrypted under its own data key by the
hub's vault, with its facets and its delivery), which takes a minute instead of the hours
that submitting them would. The load then: search pages and report reads as the police
liaison (each decrypted and redacted), inbox pages, submissions, the metrics. Baseline,
measured in the same run: the same process holding no report.
Goal (from the throughput issue): RSS <= 200 MB with 1,000,000 reports.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from harness import UNLIMITED_CLIENT, WARNING, demo_tokens, serving_hub
from sqlalchemy import insert
from sqlmodel import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exchange.canonical import canonical_json  # noqa: E402
from exchange.delivery.models import Delivery, DeliveryState  # noqa: E402
from exchange.hub import Hub  # noqa: E402
from exchange.models import table_of, utcnow  # noqa: E402
from exchange.protection import vault  # noqa: E402
from exchange.protection.models import ReportKey  # noqa: E402
from exchange.reports.models import Report, ReportFacet  # noqa: E402
from exchange.routing.models import Subscription  # noqa: E402
from exchange.settings import Settings  # noqa: E402

CHUNK = 20_000
POLICE = "polda-banten"
SENDER = "pimpasa-tanjakan-mekar"
PLACE = "36.03.11.2009"


def fill(env: dict[str, str], count: int) -> None:
    """``count`` reports from the village to the police, as the hub would have stored them."""
    hub = Hub.start(
        Settings(database_url=env["EXCHANGE_DATABASE_URL"], key_dir=Path(env["EXCHANGE_KEY_DIR"]))
    )
    try:
        with hub.session() as session:
            (subscription,) = session.exec(
                select(Subscription.id).where(Subscription.agency_id == POLICE)
            ).all()
        started = utcnow() - timedelta(days=365)
        for first in range(0, count, CHUNK):
            reports, keys, facets, deliveries = [], [], [], []
            for n in range(first, min(first + CHUNK, count)):
                report_id = uuid.uuid4().hex
                at = started + timedelta(seconds=n * 30)
                canonical = canonical_json({**WARNING, "persons_at_risk": {"count": n % 50}})
                ciphertext, key = vault.lock(
                    report_id=report_id, canonical=canonical, sealer=hub.keyring.sealer
                )
                reports.append(
                    {
                        "id": report_id,
                        "type": "village-early-warning",
                        "version": 2,
                        "sender": SENDER,
                        "tlp": "AMBER",
                        "refs": "[]",
                        "recipients": "[]",
                        "payload": ciphertext,
                        "payload_hash": "0" * 64,
                        "region": PLACE,
                        "severity": "high",
                        "signature_key_id": None,
                        "received_at": at,
                        "purged_at": None,
                    }
                )
                keys.append(key)
                facets += [
                    {"report_id": report_id, "facet": "place", "value": PLACE},
                    {"report_id": report_id, "facet": "region", "value": PLACE},
                ]
                deliveries.append(
                    {
                        "id": uuid.uuid4().hex,
                        "report_id": report_id,
                        "subscription_id": subscription,
                        "agency_id": POLICE,
                        "connector": "inbox",
                        "state": DeliveryState.acknowledged,
                        "attempts": 1,
                        "dispatch": 1,
                        "created_at": at,
                        "delivered_at": at,
                        "acknowledged_at": at,
                    }
                )
            with hub.database.engine.begin() as connection:
                for model, rows in (
                    (Report, reports),
                    (ReportKey, keys),
                    (ReportFacet, facets),
                    (Delivery, deliveries),
                ):
                    connection.execute(insert(table_of(model)), rows)
            print(f"\r  stored {min(first + CHUNK, count):,} reports", end="", flush=True)
        print()
    finally:
        hub.close()


def resident(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(env: dict[str, str], work: Path, tokens: dict[str, str]) -> tuple[float, float, float]:
    """(RSS after start-up, RSS after the load, peak) of `exchange serve`, in MB."""
    with serving_hub(env, work) as (base, server):
        time.sleep(1)  # the worker threads' first ticks
        idle, _ = resident(server.pid)
        police = {"Authorization": f"Bearer {tokens[POLICE]}"}
        village = {"Authorization": f"Bearer {tokens[SENDER]}"}
        with httpx.Client(base_url=base, timeout=600) as client:
            phase = time.monotonic()

            def timed(what: str) -> None:
                nonlocal phase
                print(f"    {what}: {time.monotonic() - phase:.1f} s", flush=True)
                phase = time.monotonic()

            cursor = None
            for _ in range(100):
                page = client.get(
                    "/v1/reports",
                    params={"limit": 50, **({"after": cursor} if cursor else {})},
                    headers=police,
                ).json()
                cursor = page["next_cursor"]
                for item in page["items"][:2]:
                    client.get(f"/v1/reports/{item['id']}", headers=police).raise_for_status()
            timed("100 search pages of 50, 200 report reads")
            for _ in range(200):
                client.post(
                    "/v1/reports",
                    json={"type": "village-early-warning", "payload": WARNING},
                    headers=village,
                ).raise_for_status()
            timed("200 submissions")
            for _ in range(5):
                client.get("/v1/inbox", params={"limit": 500}, headers=police).raise_for_status()
            timed("5 inbox pages of 500")
            client.get("/v1/reports", params={"region": "36.03"}, headers=police)
            timed("a search by region")
        loaded, peak = resident(server.pid)
        return idle, loaded, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    args = parser.parse_args()
    results = {}
    for label, count in (("empty", 0), ("full", args.reports)):
        with tempfile.TemporaryDirectory(prefix="exchange-memory-") as scratch:
            work = Path(scratch)
            env = {
                **os.environ,
                "EXCHANGE_DATABASE_URL": f"sqlite:///{work / 'hub.db'}",
                "EXCHANGE_KEY_DIR": str(work / "keys"),
                **UNLIMITED_CLIENT,
            }
            tokens = demo_tokens(env, work)
            if count:
                started = time.monotonic()
                fill(env, count)
                size = (work / "hub.db").stat().st_size / 1024**2
                print(
                    f"  {count:,} reports written in {time.monotonic() - started:.0f} s"
                    f" ({size:,.0f} MB of database)"
                )
            results[label] = measure(env, work, tokens)
            idle, loaded, peak = results[label]
            print(
                f"{label:>5} store ({count:>9,} reports): RSS {idle:6.1f} MB after start,"
                f" {loaded:6.1f} MB after the load, peak {peak:6.1f} MB"
            )
    print(
        f"full/empty peak = {results['full'][2] / results['empty'][2]:.2f};"
        f" goal: peak <= 200 MB with {args.reports:,} reports"
    )


if __name__ == "__main__":
    main()
