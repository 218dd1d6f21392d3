"""Two units of work counting reports about the same villages in opposite orders both
commit, with every report counted once: the tallies they share are written at commit, in
key order, so on PostgreSQL neither holds one the other waits for (a bulk of 500 lines
about many villages is such a unit)."""

from __future__ import annotations

import threading
from datetime import date

from sqlmodel import select

from exchange.hub import Hub
from exchange.statistics import facts
from exchange.statistics.models import StatTally
from tests.statistics.corpus import Fact, load, received_at
from tests.statistics.corpus import _Type as CorpusType

VILLAGES = ("36.03.11.2009", "36.03.11.2008")
DAY = date(2026, 11, 2)


def test_opposite_orders_do_not_deadlock(hub: Hub) -> None:
    seed = [
        Fact(
            f"{n:032x}",
            v,
            DAY,
            "village-early-warning",
            "low",
            "",
            1,
            frozenset(),
            frozenset({"polda-banten"}),
        )
        for n, v in enumerate(VILLAGES)
    ]
    load(hub, seed)  # the agency, and a first report in each village (the tallies exist)
    row_locks = hub.database.backend == "postgresql"  # SQLite has one writer at a time
    both_wrote_once = threading.Barrier(2, timeout=10)
    failures: list[BaseException] = []

    def count(name: str, order: tuple[str, ...]) -> None:
        try:
            with hub.session() as session:
                from exchange.reports.models import Report

                for step, village in enumerate(order):
                    report_id = f"{name}{step:031d}"
                    session.add(
                        Report(
                            id=report_id,
                            type="village-early-warning",
                            version=2,
                            sender="polda-banten",
                            tlp="AMBER",
                            refs="[]",
                            payload=b"",
                            payload_hash="0" * 64,
                        )
                    )
                    session.flush()
                    facts.record(
                        session,
                        report_id=report_id,
                        report_type=CorpusType("village-early-warning"),  # type: ignore[arg-type]
                        payload={"place": village, "people": 1},
                        received_at=received_at(DAY),
                        severity="low",
                        indicators=(),
                        sender="polda-banten",
                    )
                    if step == 0 and row_locks:
                        both_wrote_once.wait()
        except BaseException as failed:  # reported below, in the test's thread
            failures.append(failed)

    threads = [
        threading.Thread(target=count, args=("a", VILLAGES)),
        threading.Thread(target=count, args=("b", tuple(reversed(VILLAGES)))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    with hub.session() as session:
        tallies = session.exec(
            select(StatTally).where(StatTally.reader == "", StatTally.grain == "d")
        ).all()
    assert {t.desa: t.reports for t in tallies} == dict.fromkeys(VILLAGES, 3)
