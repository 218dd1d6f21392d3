"""A generated corpus of report facts over Banten's villages, written through the same
functions submission and routing use (``facts.record``, ``facts.share``), and the
brute-force recount the aggregates are checked against."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from sqlalchemy import insert
from sqlmodel import Session

from exchange.agencies import service as agencies
from exchange.agencies.models import AgencyKind
from exchange.hub import Hub
from exchange.regions.service import SHIPPED_DIRECTORY
from exchange.reports.models import Report
from exchange.statistics import facts
from exchange.statistics.facts import WIB

READERS = ("polda-banten", "bp3mi-banten", "dinsos-banten", "kanim-serang")
TYPES = ("village-early-warning", "departure-interception", "victim-referral")
INDICATORS = (
    "social_media_job_offer",
    "fake_or_borrowed_documents",
    "calo_recruiting",
    "fee_or_debt",
)
DESTINATIONS = ("MY", "SA", "AE", "HK", "")
SEVERITIES = ("low", "medium", "high", "critical")


def banten_villages() -> list[str]:
    with SHIPPED_DIRECTORY.open(encoding="utf-8") as source:
        return sorted(
            line.split(",", 1)[0]
            for line in source
            if line.startswith("36.") and len(line.split(",", 1)[0]) == 13
        )


def banten_directory() -> list[str]:
    with SHIPPED_DIRECTORY.open(encoding="utf-8") as source:
        return [line for line in source if line.startswith(("code,", "36"))]


@dataclass(frozen=True)
class Fact:
    report_id: str
    place: str  # the deepest code ("" none)
    day: date
    type: str
    severity: str
    destination: str
    people: int
    indicators: frozenset[str]
    readers: frozenset[str]

    def at(self, level_length: int) -> str:
        return self.place[:level_length] if len(self.place) >= level_length else ""


def generate(count: int, *, seed: int, start: date, days: int) -> list[Fact]:
    rng = random.Random(seed)
    villages = banten_villages()
    corpus = []
    for n in range(count):
        roll = rng.random()
        village = rng.choice(villages)
        # Most are placed at a village; some only at a district or regency; a few nowhere.
        place = (
            village
            if roll < 0.85
            else village[:8]
            if roll < 0.93
            else village[:5]
            if roll < 0.99
            else ""
        )
        sender = rng.choice(READERS)
        corpus.append(
            Fact(
                report_id=f"{seed:04d}{n:028d}",
                place=place,
                day=start + timedelta(days=rng.randrange(days)),
                type=rng.choice(TYPES),
                severity=rng.choice(SEVERITIES),
                destination=rng.choice(DESTINATIONS),
                people=rng.choice((0, 1, 1, 2, 3, 5, 12)),
                indicators=frozenset(rng.sample(INDICATORS, rng.randrange(3))),
                readers=frozenset({sender, *rng.sample(READERS, rng.randrange(3))}),
            )
        )
    return corpus


def planted(
    villages: list[str], *, per_village: int, start: date, days: int, reader: str, seed: int
) -> list[Fact]:
    """A cluster: ``per_village`` more reports in each of ``villages`` in a few days,
    readable by ``reader``."""
    rng = random.Random(seed)
    return [
        Fact(
            report_id=f"{seed:04d}{n:028d}",
            place=village,
            day=start + timedelta(days=rng.randrange(days)),
            type=TYPES[0],
            severity="high",
            destination="MY",
            people=rng.choice((1, 2, 3)),
            indicators=frozenset({INDICATORS[1]}),
            readers=frozenset({reader}),
        )
        for n, village in enumerate(v for v in villages for _ in range(per_village))
    ]


class _Type:
    """Enough of a report type for ``facts.record``: the place, destination and count of
    people are read from a payload shaped for it."""

    statistics: ClassVar[dict[str, Any]] = {
        "place": ["/place"],
        "destination": ["/destination"],
        "people": "/people",
    }

    def __init__(self, name: str) -> None:
        self.name = name
        self.version = 2


def load(hub: Hub, corpus: list[Fact]) -> None:
    with hub.session() as session:
        for reader in READERS:
            try:
                agencies.get_agency(session, reader)
            except agencies.AgencyNotFound:
                agencies.create_agency(
                    session,
                    agency_id=reader,
                    name=reader,
                    kind=AgencyKind.police,
                    jurisdiction="36",
                    actor="test",
                )
    with hub.session() as session:
        _write(session, corpus)


def _write(session: Session, corpus: list[Fact]) -> None:
    session.execute(
        insert(Report),
        [
            {
                "id": fact.report_id,
                "type": fact.type,
                "version": 2,
                "sender": sorted(fact.readers)[0],
                "tlp": "AMBER",
                "refs": "[]",
                "recipients": "[]",
                "payload": b"",
                "payload_hash": "0" * 64,
                "received_at": received_at(fact.day),
            }
            for fact in corpus
        ],
    )
    for fact in corpus:
        payload: dict[str, Any] = {"people": fact.people}
        if fact.place:
            payload["place"] = fact.place
        if fact.destination:
            payload["destination"] = fact.destination
        sender, *recipients = sorted(fact.readers)
        facts.record(
            session,
            report_id=fact.report_id,
            report_type=_Type(fact.type),  # type: ignore[arg-type]
            payload=payload,
            received_at=received_at(fact.day),
            severity=fact.severity,
            indicators=fact.indicators,
            sender=sender,
        )
        facts.share(session, report_id=fact.report_id, agencies=recipients)


def received_at(day: date) -> datetime:
    """A moment on ``day`` in WIB, late in the evening, so that UTC would say the next
    day: the facts must count the WIB day."""
    return datetime.combine(day, time(23, 30), tzinfo=WIB).astimezone(UTC)


def recount(
    corpus: list[Fact],
    *,
    reader: str | None,
    level_length: int,
    within: str,
    start: date,
    end: date,
    type_: str | None = None,
    indicator: str | None = None,
) -> tuple[Counter[str], Counter[str]]:
    """Reports and people per region code at the level ("" for the unplaced), by brute
    force."""
    reports: Counter[str] = Counter()
    people: Counter[str] = Counter()
    for fact in corpus:
        if reader is not None and reader not in fact.readers:
            continue
        if not (start <= fact.day <= end) or not fact.place.startswith(within):
            continue
        if type_ is not None and fact.type != type_:
            continue
        if indicator is not None and indicator not in fact.indicators:
            continue
        region = fact.at(level_length)
        reports[region] += 1
        people[region] += fact.people
    return reports, people
