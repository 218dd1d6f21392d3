"""Statistics over a million reports on SQLite: the village-level counts of Banten (with the
previous period and eight periods of history for the hotspots), against a baseline
measured in the same run: one bare GROUP BY village over the same reader's facts, the
least any answer must read.

    .venv/bin/python bench/stats.py                  # 1,000,000 reports
    .venv/bin/python bench/stats.py --reports 100000

Then the SVG map of Banten's villages, against the GeoJSON of the same outlines.

Targets: the village-level answer in at most 200 ms; the map in at most 300 ms and 1.5 MB.
"""

from __future__ import annotations

import argparse
import random
import statistics as stats
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import shapely
from sqlalchemy import insert, text

from exchange import migrations
from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind
from exchange.hub import Hub
from exchange.regions import service as regions
from exchange.reports.models import Report
from exchange.settings import Settings
from exchange.statistics import facts, maps, service
from exchange.statistics.contracts import Statistics
from exchange.statistics.facts import HUB, place_levels
from exchange.statistics.models import StatFact

TODAY = date(2026, 11, 30)
BATCH = 50_000


def best_of(runs: int, work: object) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stats-bench-"))
    url = f"sqlite:///{work / 'hub.db'}"
    migrations.upgrade(url)
    hub = Hub.start(Settings(database_url=url, key_dir=work / "keys", log_json=False))
    with hub.session() as session:
        lines = [
            line
            for line in regions.SHIPPED_DIRECTORY.open(encoding="utf-8")
            if line.startswith(("code,", "36"))
        ]
        regions.import_directory(session, lines=lines, actor="bench")
        agencies.create_agency(
            session,
            agency_id="polda-banten",
            name="Polda Banten",
            kind=AgencyKind.police,
            jurisdiction="36",
            actor="bench",
        )
    villages = [line.split(",", 1)[0] for line in lines if len(line.split(",", 1)[0]) == 13]
    rng = random.Random(1)
    started = time.perf_counter()
    first_day = (TODAY - timedelta(days=365)).toordinal()
    with hub.session() as session:
        connection = session.connection()
        for offset in range(0, args.reports, BATCH):
            count = min(BATCH, args.reports - offset)
            ids = [f"{offset + n:032x}" for n in range(count)]
            connection.execute(
                insert(Report),
                [
                    {
                        "id": report_id,
                        "type": "village-early-warning",
                        "version": 2,
                        "sender": "polda-banten",
                        "tlp": "AMBER",
                        "refs": "[]",
                        "recipients": "[]",
                        "payload": b"",
                        "payload_hash": "0" * 64,
                    }
                    for report_id in ids
                ],
            )
            rows = [
                {
                    "reader": HUB,
                    **place_levels(rng.choice(villages)),
                    "day": first_day + rng.randrange(365),
                    "report_id": report_id,
                    "type": "village-early-warning",
                    "version": 2,
                    "severity": rng.choice(("low", "medium", "high")),
                    "destination": rng.choice(("MY", "SA", "HK", "")),
                    "people": rng.randrange(1, 6),
                }
                for report_id in ids
            ]
            connection.execute(insert(StatFact), rows)
            facts.count_in_tallies(session, rows)
    print(f"loaded {args.reports:,} reports' facts in {time.perf_counter() - started:.1f} s")
    with hub.session() as session:
        session.execute(text("ANALYZE"))

    def answer(days: int) -> Statistics:
        with hub.session() as session:
            return service.statistics(
                session,
                reader=HUB,
                query=service.StatsQuery(
                    level="desa",
                    within="36",
                    period_from=TODAY - timedelta(days=days - 1),
                    period_to=TODAY,
                ),
                registry=hub.registry,
                today=TODAY,
            )

    def baseline() -> None:
        with hub.session() as session:
            session.execute(
                text("SELECT desa, count(*) FROM stat_fact WHERE reader = '' GROUP BY desa")
            ).all()

    base = stats.median(best_of(args.runs, baseline))
    print(f"baseline: one GROUP BY village over all {args.reports:,} facts: {base:.0f} ms")
    for days, label in ((30, "last 30 days, 8 periods of history"), (365, "the whole year")):
        timings = best_of(args.runs, lambda days=days: answer(days))
        median = stats.median(timings)
        verdict = "meets" if median <= 200 else "MISSES"
        print(
            f"village-level answer, {label}: median {median:.0f} ms, best {min(timings):.0f} ms "
            f"({median / base:.2f}x baseline) — {verdict} the 200 ms target"
        )
    draw(hub, answer(30), runs=args.runs)
    hub.close()


def draw(hub: Hub, answer: Statistics, *, runs: int) -> None:
    """The map of Banten's 1,551 villages with an outline, cold (projected and simplified
    from the stored outlines) and from the cache, against the GeoJSON of the same outlines
    that a map drawn in the browser would have to download and read."""
    with hub.session() as session:
        regions.import_boundaries(
            session, data=regions.SHIPPED_BOUNDARIES.read_bytes(), actor="bench"
        )
    with hub.session() as session:
        stored = regions.boundaries_under(session, "36", length=13)
    outlines = [
        maps.Outline(code, row.shape, row.longitude, row.latitude) for code, row in stored.items()
    ]
    words = {
        "title": "Banten",
        "legend": "Reports",
        "none": "0",
        "withheld": "withheld",
        "hotspot": "hotspot",
        "tooltip": "{name}: {value}",
    }

    def cold() -> None:
        maps._cache.clear()
        maps.svg(answer, outlines, words=words)

    def geojson() -> None:
        shapely.to_geojson(shapely.from_wkb([o.shape for o in outlines])).tolist()

    cold_ms = stats.median(best_of(runs, cold))
    warm_ms = stats.median(best_of(runs, lambda: maps.svg(answer, outlines, words=words)))
    base_ms = stats.median(best_of(runs, geojson))
    drawing = maps.svg(answer, outlines, words=words).encode()
    geo_size = len(
        ",".join(shapely.to_geojson(shapely.from_wkb([o.shape for o in outlines])).tolist())
    )
    verdict = "meets" if cold_ms <= 300 and len(drawing) <= 1_500_000 else "MISSES"
    print(
        f"SVG map of {len(outlines):,} villages: {cold_ms:.0f} ms cold, {warm_ms:.0f} ms cached, "
        f"{len(drawing) / 1e6:.2f} MB — {verdict} the 300 ms and 1.5 MB target"
    )
    print(
        f"baseline: the same outlines as GeoJSON: {base_ms:.0f} ms to write, "
        f"{geo_size / 1e6:.2f} MB (the SVG is {len(drawing) / geo_size:.2f}x its size, "
        f"drawn in {cold_ms / base_ms:.2f}x its time)"
    )


if __name__ == "__main__":
    main()
