"""The facts statistics count, taken from a report when it is accepted: where (the place
at every level of the region codes), what (type, severity, indicators, destination
country), how many people and their age bands and genders, and the day. Never a name,
number, phone or free text: a schema's ``x-statistics`` names which fields to read, and
the registry checks that they are codes, counts and enumerations.

Written beside the report in the same unit of work, one row per reader the visibility
rule names (the sender now, each recipient as it is routed), so that a reader's counts are
a range scan of its own rows instead of a join with the deliveries."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from exchange.models import insert_rows, table_of
from exchange.registry.service import ReportType, values_at
from exchange.statistics.models import StatFact, StatIndicator, StatPerson, StatTally

# Days are counted in Western Indonesia Time, where the programme works.
WIB = ZoneInfo("Asia/Jakarta")
WORD = re.compile(r"[A-Za-z0-9+_-]+")
_JUST_RECORDED = "exchange.statistics.just_recorded"
_PENDING_TALLIES = "exchange.statistics.pending_tallies"
PENDING_BATCH = 500
HUB = ""  # the reader whose rows count every report: what publication starts from
LEVELS = ("province", "kabupaten", "kecamatan", "desa")
CODE_LENGTHS = {"province": 2, "kabupaten": 5, "kecamatan": 8, "desa": 13}


# A province, regency or district code, in ASCII digits: what counts are asked "within".
AREA_PATTERN = r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2})?)?$"


def level_of(code: str) -> str:
    """The level a code of one of the four shapes names (``36.03`` → ``kabupaten``)."""
    return next(level for level, length in CODE_LENGTHS.items() if length == len(code))


def day_of(moment: datetime) -> int:
    """The WIB day of a moment, as the ordinal the facts store."""
    return moment.astimezone(WIB).date().toordinal()


def as_date(day: int) -> date:
    return date.fromordinal(day)


def place_levels(code: str | None) -> dict[str, str]:
    """A region code at every level (``36.03.11`` → province ``36``, kabupaten ``36.03``,
    kecamatan ``36.03.11``, desa ``""``)."""
    code = code or ""
    return {
        level: code[:length] if len(code) >= length else ""
        for level, length in CODE_LENGTHS.items()
    }


@dataclass(frozen=True)
class Facts:
    place: str | None
    destination: str
    people: int
    persons: dict[tuple[str, str], int]


def _word(value: object, longest: int) -> str:
    """An enumeration's value as the facts keep it: a short word of letters, digits and
    ``+-_`` (a country code, an age band, a gender), or "" for anything else, so a schema
    that points statistics at the wrong field cannot put free text in them."""
    if isinstance(value, str) and 0 < len(value) <= longest and WORD.fullmatch(value):
        return value
    return ""


def facts_of(report_type: ReportType, payload: dict[str, Any]) -> Facts:
    """What ``x-statistics`` says to count of this payload."""
    spec = report_type.statistics

    def first(patterns: Iterable[str]) -> str | None:
        return next(
            (
                value
                for pattern in patterns
                for _, value in values_at(payload, pattern)
                if isinstance(value, str)
            ),
            None,
        )

    persons = [
        person
        for pattern in spec.get("persons", ())
        for _, person in values_at(payload, pattern)
        if isinstance(person, dict)
    ]
    tally = Counter((_word(p.get("age_band"), 8), _word(p.get("gender"), 32)) for p in persons)
    counted = next(
        (
            value
            for _, value in (values_at(payload, spec["people"]) if "people" in spec else ())
            if isinstance(value, int) and not isinstance(value, bool)
        ),
        None,
    )
    people = max(counted, len(persons)) if counted is not None else len(persons)
    return Facts(
        place=first(spec.get("place", ())),
        destination=_word(first(spec.get("destination", ())), 2),
        people=people,
        persons=dict(tally),
    )


def month_of(day: int) -> int:
    """The first day of ``day``'s month, as an ordinal."""
    moment = date.fromordinal(day)
    return date(moment.year, moment.month, 1).toordinal()


TALLY_KEY = ("reader", "grain", *LEVELS, "start")
# What a fact row adds to its tallies (and the id that says which row it is).
TALLIED = tuple(
    col(getattr(StatFact, name)) for name in ("report_id", "reader", *LEVELS, "day", "people")
)


# The fact rows of some reports, read back at commit (see _write_tallies).
_TALLIED_ROWS = select(*TALLIED).where(
    col(StatFact.report_id).in_(bindparam("report_ids", expanding=True))
)


def _dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT with the database's ON CONFLICT clause (SQLite and PostgreSQL spell it
    the same way, through different constructs)."""
    dialect = session.get_bind().dialect.name
    return (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)


def _tally_upsert(dialect: str) -> Any:
    insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(StatTally)
    return insert.on_conflict_do_update(
        index_elements=list(TALLY_KEY),
        set_={
            "reports": StatTally.reports + insert.excluded.reports,
            "people": StatTally.people + insert.excluded.people,
        },
    )


# Built once per dialect, as every commit that wrote facts runs one: building it (its
# column proxies and cache key) cost more than the statement itself.
_TALLY_UPSERTS = {dialect: _tally_upsert(dialect) for dialect in ("sqlite", "postgresql")}


def count_in_tallies(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add fact rows to their readers' tallies of the day and of the month, in one
    statement, key by key in key order."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        for grain, start in (("d", row["day"]), ("m", month_of(row["day"]))):
            key = (row["reader"], grain, *(row[level] for level in LEVELS), start)
            found = sums.setdefault(key, [0, 0])
            found[0] += 1
            found[1] += row["people"]
    if not sums:
        return
    statement = _TALLY_UPSERTS[session.get_bind().dialect.name]
    values = [
        {**dict(zip(TALLY_KEY, key, strict=True)), "reports": n, "people": people}
        for key, (n, people) in sorted(sums.items())
    ]
    session.execute(statement, values)


def _count_at_commit(session: Session, pairs: Iterable[tuple[str, str]]) -> None:
    """Remember (report, reader) fact rows written in this transaction: their tallies are
    added just before it commits (see :func:`_write_tallies`)."""
    session.info.setdefault(_PENDING_TALLIES, set()).update(pairs)


@event.listens_for(Session, "before_commit")
def _write_tallies(session: Session) -> None:
    """The tallies of the fact rows this transaction wrote, in one statement at the end.

    At the end, because a tally row is shared (every report about a village on a day adds
    to the same one): taken during the transaction, in the order reports came, two
    transactions about the same two villages could each hold one and wait for the other
    (PostgreSQL's deadlock). Taken last, all in key order, they cannot. Only the rows
    still there are counted: a savepoint rolled back (a refused line of a bulk) took its
    rows with it. (SQLAlchemy runs this hook when a savepoint is released too: that is
    not the end, and taking tally rows there would bring the deadlock back.)"""
    if session.in_nested_transaction():
        return
    pending: set[tuple[str, str]] = session.info.pop(_PENDING_TALLIES, set())
    if not pending:
        return
    ids = sorted({report_id for report_id, _ in pending})
    written: list[dict[str, Any]] = []
    for first in range(0, len(ids), PENDING_BATCH):
        chunk = ids[first : first + PENDING_BATCH]
        rows = session.execute(_TALLIED_ROWS, {"report_ids": chunk}).mappings()
        written += [dict(row) for row in rows if (row["report_id"], row["reader"]) in pending]
    count_in_tallies(session, written)


@event.listens_for(Session, "after_rollback")
def _forget_tallies(session: Session) -> None:
    # A savepoint rolled back took its own fact rows with it, and the others stay: the
    # tallies count the rows still there at the end (_write_tallies).
    if session.in_nested_transaction():
        return
    session.info.pop(_PENDING_TALLIES, None)
    session.info.pop(_JUST_RECORDED, None)


def record(
    session: Session,
    *,
    report_id: str,
    report_type: ReportType,
    payload: dict[str, Any],
    received_at: datetime,
    severity: str | None,
    indicators: Iterable[str],
    sender: str,
) -> None:
    """Store a report's facts for the hub and its sender; recipients are added by
    :func:`share` as the report is routed to them."""
    facts = facts_of(report_type, payload)
    row = {
        **place_levels(facts.place),
        "day": day_of(received_at),
        "report_id": report_id,
        "type": report_type.name,
        "version": report_type.version,
        "severity": severity or "",
        "destination": facts.destination,
        "people": facts.people,
    }
    rows = [{**row, "reader": HUB}, {**row, "reader": sender}]
    insert_rows(session, StatFact, rows)
    _count_at_commit(session, [(report_id, HUB), (report_id, sender)])
    # Routing shares the report in the same unit of work: it need not read the row back.
    session.info.setdefault(_JUST_RECORDED, {})[report_id] = (row, {HUB, sender})
    chosen = sorted(set(indicators))
    insert_rows(session, StatIndicator, [{"report_id": report_id, "indicator": i} for i in chosen])
    insert_rows(
        session,
        StatPerson,
        [
            {"report_id": report_id, "age_band": band, "gender": gender, "people": n}
            for (band, gender), n in sorted(facts.persons.items())
        ],
    )


def share(session: Session, *, report_id: str, agencies: Iterable[str]) -> None:
    """Count the report for these agencies too: it has been routed to them. A report with
    no facts (accepted before statistics, not yet backfilled) is left alone."""
    recorded = session.info.get(_JUST_RECORDED, {}).pop(report_id, None)
    if recorded is not None:
        template, counted = recorded
    else:
        rows = session.exec(select(StatFact).where(col(StatFact.report_id) == report_id)).all()
        hub_row = next((row for row in rows if row.reader == HUB), None)
        if hub_row is None:
            return
        template, counted = hub_row.model_dump(), {row.reader for row in rows}
    fresh = sorted(set(agencies) - counted)
    if fresh and recorded is not None:
        # A report of this unit of work: no other transaction can have shared it yet.
        insert_rows(session, StatFact, [{**template, "reader": agency} for agency in fresh])
        _count_at_commit(session, [(report_id, reader) for reader in fresh])
    elif fresh:
        # Two subscriptions' backfills may share a report with the same agency at once:
        # the second finds the row there and counts nothing.
        table = table_of(StatFact)
        statement = _dialect_insert(session, table).on_conflict_do_nothing()
        added = session.execute(
            statement.returning(table.c.reader),
            [{**template, "reader": agency} for agency in fresh],
        )
        _count_at_commit(session, [(report_id, reader) for reader in added.scalars()])
