"""Counts of reports and people at risk by region, period and group, for a reader (the
reports it may see) or for publication (every report, small cells withheld). Functions
take the session first and never commit."""

from __future__ import annotations

import calendar
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, or_, select
from sqlmodel import Session, col
from sqlmodel import select as sqlmodel_select

from exchange.audit import service as audit
from exchange.delivery.models import Delivery
from exchange.errors import InvalidInput
from exchange.i18n import Locale, t
from exchange.protection import vault
from exchange.protection.sealing import Sealer
from exchange.regions import service as regions
from exchange.regions.countries import country_names
from exchange.registry.service import SchemaRegistry
from exchange.reports.models import Report, ReportFacet
from exchange.statistics import facts, hotspots, suppression
from exchange.statistics.contracts import (
    ADDITIVE,
    Dimension,
    GroupFigures,
    HotspotOut,
    Level,
    RegionFigures,
    Statistics,
)
from exchange.statistics.facts import AREA_PATTERN, CODE_LENGTHS, HUB, LEVELS, level_of
from exchange.statistics.models import StatFact, StatIndicator, StatTally
from exchange.statistics.suppression import Count, Relation

AREA = re.compile(AREA_PATTERN)
DEFAULT_DAYS = 30
BACKFILL_BATCH = 500
HISTORY_MONTHS = 36
TOTAL = "(total)"  # the group of a region's total: no group value has parentheses
UNPLACED = "(unplaced)"  # the answer's row of reports in the area not placed as deep


@dataclass(frozen=True)
class StatsQuery:
    level: Level = "kabupaten"
    within: str = "36"
    period_from: date | None = None
    period_to: date | None = None  # inclusive
    type: str | None = None
    indicator: str | None = None
    group_by: Dimension | None = None
    public: bool = False


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def before(self, count: int = 1) -> Period:
        """The period of the same length ``count`` lengths earlier."""
        shift = timedelta(days=self.days * count)
        return Period(self.start - shift, self.end - shift)


EARLIEST = date(2000, 1, 1)  # long before the hub, and far enough from date.min to count back
LATEST = date(2999, 12, 31)


def periods(query: StatsQuery, *, today: date) -> tuple[Period, Period]:
    """The period asked for and the one before it. In public mode both are whole calendar
    years that have ended: a table published for a period still open would change day by
    day, and two days' tables would differ by the reports between them."""
    for day, pointer in ((query.period_from, "/from"), (query.period_to, "/to")):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise InvalidInput.at(
                t("stats.day_range", first=EARLIEST.isoformat(), last=LATEST.isoformat()),
                pointer,
            )
    if query.public:
        year = (query.period_from or date(today.year - 1, 1, 1)).year
        wanted = Period(date(year, 1, 1), date(year, 12, 31))
        asked = Period(query.period_from or wanted.start, query.period_to or wanted.end)
        if asked != wanted or wanted.end >= today:
            raise InvalidInput.at(t("stats.public_year"), "/from")
        return wanted, Period(date(year - 1, 1, 1), date(year - 1, 12, 31))
    end = query.period_to or today
    start = query.period_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput.at(t("stats.bad_period"), "/from")
    if (end - start).days > 3660:
        raise InvalidInput.at(t("stats.long_period"), "/from")
    current = Period(start, end)
    return current, current.before()


def history_window(current: Period) -> Window:
    """What hotspots weigh a period against: the ``HISTORY`` periods of the same length
    before it, as the whole months among them (at most ``HISTORY_MONTHS``; the month
    tallies answer them a row per place), or as days when they hold no whole month."""
    span = Period(
        current.start - timedelta(days=current.days * hotspots.HISTORY),
        current.start - timedelta(days=1),
    )
    whole = Window.of(span).months[-HISTORY_MONTHS:]
    return Window(whole, ()) if whole else Window.of(span, by_month=False)


def _check(query: StatsQuery, registry: SchemaRegistry) -> None:
    depth = len(query.within)
    if not AREA.fullmatch(query.within) or depth >= CODE_LENGTHS[query.level]:
        raise InvalidInput.at(t("stats.within_level", level=query.level), "/within")
    if query.type is not None and query.type not in registry.names():
        raise InvalidInput.at(t("stats.unknown_type", type=query.type), "/type")
    if query.public and (query.type or query.indicator):
        raise InvalidInput.at(t("stats.public_filters"), "/type" if query.type else "/indicator")


@dataclass
class _Cells:
    """Counts by (node, group) for each period bucket: bucket 0 is the period asked,
    1 the one before, then the history hotspots weigh."""

    reports: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    people: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], reports: Sequence[int], people: Sequence[int]) -> None:
        have = self.reports.setdefault(key, [0] * len(reports))
        for i, value in enumerate(reports):
            have[i] += value
        mine = self.people.setdefault(key, [0] * len(people))
        for i, value in enumerate(people):
            mine[i] += value

    def count(self, key: tuple[str, str], bucket: int) -> Count:
        return Count(self.reports.get(key, [0, 0])[bucket], self.people.get(key, [0, 0])[bucket])


def _group_column(query: StatsQuery, current: Period) -> ColumnElement[Any]:
    if query.group_by is None:
        return literal(TOTAL)
    if query.group_by == "indicator":
        return func.coalesce(col(StatIndicator.indicator), "")
    if query.group_by == "month":
        whens = []
        month = date(current.start.year, current.start.month, 1)
        while month <= current.end:
            last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
            whens.append(
                (
                    col(StatFact.day).between(month.toordinal(), last.toordinal()),
                    month.strftime("%Y-%m"),
                )
            )
            month = last + timedelta(days=1)
        return case(*whens, else_="")
    column: ColumnElement[Any] = getattr(StatFact, query.group_by)
    return column


@dataclass(frozen=True)
class Window:
    """The days one bucket counts: whole calendar months (their first days' ordinals),
    which the month tallies answer a row per place, and the other days."""

    months: tuple[int, ...]
    days: tuple[tuple[int, int], ...]  # inclusive ranges of ordinals

    @classmethod
    def of(cls, period: Period, *, by_month: bool = True) -> Window:
        if not by_month:
            return cls((), ((period.start.toordinal(), period.end.toordinal()),))
        months, days = [], []
        day = period.start
        while day <= period.end:
            last = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
            if day.day == 1 and last <= period.end:
                months.append(day.toordinal())
            else:
                days.append((day.toordinal(), min(last, period.end).toordinal()))
            day = last + timedelta(days=1)
        return cls(tuple(months), tuple(days))

    def ranges(self) -> list[tuple[int, int]]:
        """Every day counted, as ranges."""
        whole = [(start, _month_end(start)) for start in self.months]
        return sorted([*whole, *self.days])

    @property
    def length(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges())


def _month_end(first: int) -> int:
    day = date.fromordinal(first)
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1]).toordinal()


def _within(column: Any, ranges: Sequence[tuple[int, int]]) -> ColumnElement[bool]:
    return or_(*(column.between(first, last) for first, last in ranges)) if ranges else false()


def _one_of(column: Any, values: Sequence[int]) -> ColumnElement[bool]:
    return column.in_(values) if values else false()


def _area(table: Any, query: StatsQuery, reader: str) -> list[ColumnElement[bool]]:
    return [table.reader == reader, getattr(table, level_of(query.within)) == query.within]


def _sums(conditions: Sequence[ColumnElement[bool]], people: Any, *, counted: Any = 1) -> list[Any]:
    """Per bucket, the reports (``counted``: 1 a fact, or a tally's count) and, for the
    first two, the people."""
    return [
        *(func.sum(case((inside, counted), else_=0)) for inside in conditions),
        *(func.sum(case((inside, people), else_=0)) for inside in conditions[:2]),
    ]


def _from_facts(
    session: Session,
    *,
    reader: str,
    query: StatsQuery,
    path: Sequence[str],
    windows: Sequence[Window],
    group: ColumnElement[Any],
) -> list[tuple[Any, ...]]:
    """One pass over the reader's facts in the area: per place (``path``: the level
    columns to group by, a prefix of the table's key, so rows come grouped) and group,
    the reports in each window and the people in the first two."""
    day = col(StatFact.day)
    every = [r for window in windows for r in window.ranges()]
    columns: list[Any] = [getattr(StatFact, level) for level in path]
    statement = select(
        *columns,
        group,
        *_sums([_within(day, w.ranges()) for w in windows], StatFact.people),
    )
    conditions = [
        *_area(StatFact, query, reader),
        day.between(min(r[0] for r in every), max(r[1] for r in every)),
    ]
    if query.type is not None:
        conditions.append(col(StatFact.type) == query.type)
    if query.indicator is not None:
        conditions.append(
            col(StatFact.report_id).in_(
                select(col(StatIndicator.report_id)).where(
                    col(StatIndicator.indicator) == query.indicator
                )
            )
        )
    if query.group_by == "indicator":
        statement = statement.select_from(StatFact).outerjoin(
            StatIndicator, col(StatIndicator.report_id) == col(StatFact.report_id)
        )
    statement = statement.where(and_(*conditions)).group_by(*columns, group)
    return [tuple(row) for row in session.execute(statement).all()]


def _from_tallies(
    session: Session,
    *,
    reader: str,
    query: StatsQuery,
    path: Sequence[str],
    windows: Sequence[Window],
) -> list[tuple[Any, ...]]:
    """The same counts (no filter, no group) from the tallies: a row per place and month
    for the whole months, a row per place and day for the rest. A month of a busy
    village is one row instead of hundreds."""
    start = col(StatTally.start)
    columns: list[Any] = [getattr(StatTally, level) for level in path]
    months = [list(w.months) for w in windows]
    days = [list(w.days) for w in windows]
    queries: list[tuple[str, list[ColumnElement[bool]], list[tuple[int, int]]]] = []
    if any(months):
        queries.append(
            (
                "m",
                [_one_of(start, chosen) for chosen in months],
                [(m, m) for chosen in months for m in chosen],
            )
        )
    if any(days):
        queries.append(
            (
                "d",
                [_within(start, chosen) for chosen in days],
                [r for chosen in days for r in chosen],
            )
        )
    found: list[tuple[Any, ...]] = []
    for grain, inside, every in queries:
        statement = (
            select(
                *columns,
                literal(TOTAL),
                *_sums(inside, StatTally.people, counted=StatTally.reports),
            )
            .where(
                *_area(StatTally, query, reader),
                col(StatTally.grain) == grain,
                start.between(min(r[0] for r in every), max(r[1] for r in every)),
            )
            .group_by(*columns)
        )
        found.extend(tuple(row) for row in session.execute(statement).all())
    return found


def _nodes(place: Sequence[str], depth: int) -> list[str]:
    """The regions a fact counts in, down to ``depth`` levels, and, when it is not placed
    that deep, the unplaced bucket of the deepest region it reaches."""
    codes = [code for code in place[:depth] if code]
    if len(codes) == depth:
        return codes
    return [*codes, "unplaced:" + (codes[-1] if codes else "")]


def _parent(node: str) -> str | None:
    if node.startswith("unplaced:"):
        return node.removeprefix("unplaced:") or None
    above = regions.parents(node)
    return above[0] if above else None


def _count(
    session: Session,
    *,
    reader: str,
    query: StatsQuery,
    depth: int,
    windows: Sequence[Window],
    group: ColumnElement[Any] | None,
) -> _Cells:
    """Counts by (node, group) at every level down to ``depth``, per window: the region
    totals from one pass (the tallies' when nothing filters), each group's from a second
    over the first two windows when the query has groups (a report raising two
    indicators counts once in its region's total and once under each)."""
    cells = _Cells()
    path = LEVELS[:depth]
    if query.type is None and query.indicator is None:
        rows = _from_tallies(session, reader=reader, query=query, path=path, windows=windows)
    else:
        rows = _from_facts(
            session, reader=reader, query=query, path=path, windows=windows, group=literal(TOTAL)
        )
    if group is not None:
        rows += _from_facts(
            session, reader=reader, query=query, path=path, windows=windows[:2], group=group
        )
    for row in rows:
        if query.group_by == "month" and row[depth] == "":
            continue  # the period before's facts, in no month of this one
        counts = [int(v or 0) for v in row[depth + 1 :]]
        reports, people = counts[:-2], counts[-2:]
        for node in _nodes(row[:depth], depth):
            cells.add((node, str(row[depth])), reports, people)
    return cells


def _public_hidden(cells: _Cells, *, bucket: int, additive: bool) -> set[tuple[str, str]]:
    """The cells of one period's published table to withhold: first the region totals
    (the tree of regions, each the sum of its children and its unplaced reports), then,
    with those decisions fixed, the groups (each group's own tree, and each row's groups
    adding up to its total when every report falls in one group)."""
    nodes = {node for node, _ in cells.reports}
    groups = {g for _, g in cells.reports if g != TOTAL}
    children: dict[str, list[str]] = defaultdict(list)
    for node in sorted(nodes):
        parent = _parent(node)
        if parent is not None:
            children[parent].append(node)

    def tree(g: str) -> list[Relation[tuple[str, str]]]:
        return [
            Relation((parent, g), [(child, g) for child in kids])
            for parent, kids in sorted(children.items())
        ]

    counts = {key: cells.count(key, bucket) for key in cells.reports}
    totals = {key: count for key, count in counts.items() if key[1] == TOTAL}
    hidden_totals = suppression.suppress(totals, tree(TOTAL))
    if not groups:
        return hidden_totals
    relations = [relation for g in sorted(groups) for relation in tree(g)]
    if additive:
        relations += [
            Relation((node, TOTAL), [(node, g) for g in sorted(groups)]) for node in sorted(nodes)
        ]
    fixed_shown = frozenset(key for key in totals if key not in hidden_totals)
    return suppression.suppress(
        counts, relations, fixed_hidden=frozenset(hidden_totals), fixed_shown=fixed_shown
    )


def _gather_unplaced(
    cells: _Cells,
    hidden: tuple[set[tuple[str, str]], set[tuple[str, str]]],
    *,
    within: str,
    level: Level,
) -> None:
    """Add the answer's unplaced row: the unplaced buckets under ``within`` shallower than
    ``level``, withheld in a period where any of them is (their sum would reveal it)."""
    for (node, g), reports in list(cells.reports.items()):
        code = node.removeprefix("unplaced:")
        if node == code or len(code) >= CODE_LENGTHS[level]:
            continue
        if code != within and not code.startswith(within + "."):
            continue
        cells.add((UNPLACED, g), reports, cells.people[(node, g)])
        for bucket in (0, 1):
            if (node, g) in hidden[bucket]:
                hidden[bucket].add((UNPLACED, g))


def _label(query: StatsQuery, registry: SchemaRegistry, locale: Locale) -> Any:
    if query.group_by == "indicator":
        labels = registry.indicator_labels()
        return lambda value: (
            labels.get(value, {}).get(locale, value) if value else t("stats.none").render(locale)
        )
    if query.group_by == "destination":
        names = country_names(locale)
        return lambda value: names.get(value, value) if value else t("stats.unknown").render(locale)
    return lambda value: value or t("stats.unknown").render(locale)


def statistics(
    session: Session,
    *,
    reader: str,
    query: StatsQuery,
    registry: SchemaRegistry,
    today: date,
    locale: Locale = "en",
) -> Statistics:
    """The counts ``reader`` may see (every report, small cells withheld, when the query
    is public: ``reader`` is then ignored)."""
    _check(query, registry)
    current, previous = periods(query, today=today)
    depth = LEVELS.index(query.level) + 1
    group = _group_column(query, current)
    public = query.public
    mark_hotspots = not public and query.group_by is None
    grouping = None if query.group_by is None else group
    hidden: tuple[set[tuple[str, str]], set[tuple[str, str]]] = (set(), set())
    if public:
        # The whole tree, to the villages, whatever the level asked: every level's table
        # then withholds the same cells.
        cells = _count(
            session,
            reader=HUB,
            query=replace(query, within=query.within[:2]),
            depth=len(LEVELS),
            windows=[Window.of(current), Window.of(previous)],
            group=grouping,
        )
        additive = query.group_by in ADDITIVE
        hidden = (
            _public_hidden(cells, bucket=0, additive=additive),
            _public_hidden(cells, bucket=1, additive=additive),
        )
    else:
        windows = [Window.of(current), Window.of(previous)]
        if mark_hotspots:
            windows.append(history_window(current))
        cells = _count(
            session, reader=reader, query=query, depth=depth, windows=windows, group=grouping
        )

    length = CODE_LENGTHS[query.level]
    counted = {
        node
        for node, _ in cells.reports
        if len(node) == length and node.startswith(query.within + ".")
    }
    listed = regions.names_under(session, query.within, deepest=length)
    # Every region of the level the directory lists, and any counted it does not.
    names = {
        code: listed.get(code, code)
        for code in sorted(counted | {code for code in listed if len(code) == length})
    }
    populations = regions.populations()
    label = _label(query, registry, locale)
    groups = sorted(
        {g for (_, g) in cells.reports if g != TOTAL},
        key=lambda g: (g == "", g),
    )

    def figures(node: str, group_value: str, **extra: Any) -> dict[str, Any]:
        key = (node, group_value)
        now, before = cells.count(key, 0), cells.count(key, 1)
        withheld, previous_withheld = key in hidden[0], key in hidden[1]
        grouped_month = query.group_by == "month" and group_value != TOTAL
        shown_now = None if withheld else now
        shown_before = None if previous_withheld or grouped_month else before
        population = populations.get(node) if group_value == TOTAL else None

        def rate(value: int | None) -> float | None:
            return (
                round(value * 100_000 / population, 2) if value is not None and population else None
            )

        return {
            "reports": shown_now.reports if shown_now else None,
            "people": shown_now.people if shown_now else None,
            "previous_reports": shown_before.reports if shown_before else None,
            "previous_people": shown_before.people if shown_before else None,
            "change_reports": shown_now.reports - shown_before.reports
            if shown_now and shown_before
            else None,
            "change_people": shown_now.people - shown_before.people
            if shown_now and shown_before
            else None,
            "reports_per_100k": rate(shown_now.reports if shown_now else None),
            "people_per_100k": rate(shown_now.people if shown_now else None),
            "withheld": withheld,
            "previous_withheld": previous_withheld,
            **extra,
        }

    def region(
        node: str, code: str, name: str, *, hotspot: HotspotOut | None = None
    ) -> RegionFigures:
        return RegionFigures(
            code=code,
            name=name,
            population=populations.get(code),
            hotspot=hotspot,
            groups=[
                GroupFigures(**figures(node, g, group=g, label=label(g)))
                for g in groups
                if (node, g) in cells.reports
            ],
            **figures(node, TOTAL),
        )

    found = {}
    if mark_hotspots:
        history = windows[2]
        found = hotspots.assess(
            {code: cells.count((code, TOTAL), 0).reports for code in names},
            {code: cells.reports.get((code, TOTAL), [0, 0, 0])[2] for code in names},
            {code: regions.parents(code)[0] for code in names},
            periods=history.length / current.days,
        )
    within_name = regions.names_of(session, [query.within]).get(query.within, query.within)
    _gather_unplaced(cells, hidden, within=query.within, level=query.level)
    return Statistics(
        level=query.level,
        within=query.within,
        within_name=within_name,
        period_from=current.start,
        period_to=current.end,
        previous_from=previous.start,
        previous_to=previous.end,
        type=query.type,
        indicator=query.indicator,
        group_by=query.group_by,
        public=public,
        threshold=suppression.THRESHOLD if public else None,
        regions=[
            region(
                code,
                code,
                name,
                hotspot=HotspotOut(
                    expected=found[code].expected,
                    excess=found[code].excess,
                    p_value=found[code].p_value,
                    flagged=found[code].flagged,
                )
                if code in found
                else None,
            )
            for code, name in names.items()
        ],
        unplaced=region(
            UNPLACED,
            "",
            t("stats.unplaced", level=query.level).render(locale),
        ),
        total=region(query.within, query.within, within_name),
    )


@dataclass
class Backfilled:
    counted: int = 0
    purged_without_facts: int = 0
    unknown_type: int = 0
    last: str = ""  # the last report id looked at: where the next batch starts


def _backfill_one(
    session: Session, report: Report, *, registry: SchemaRegistry, sealer: Sealer
) -> None:
    canonical = vault.unlock(session, report_id=report.id, ciphertext=report.payload, sealer=sealer)
    indicators = session.exec(
        sqlmodel_select(ReportFacet.value).where(
            col(ReportFacet.report_id) == report.id, col(ReportFacet.facet) == "indicator"
        )
    ).all()
    facts.record(
        session,
        report_id=report.id,
        report_type=registry.get(report.type, report.version),
        payload=json.loads(canonical),
        received_at=report.received_at,
        severity=report.severity,
        indicators=indicators,
        sender=report.sender,
    )
    recipients = session.exec(
        sqlmodel_select(Delivery.agency_id).where(col(Delivery.report_id) == report.id)
    ).all()
    facts.share(session, report_id=report.id, agencies=recipients)


def backfill_batch(
    session: Session, *, after: str, registry: SchemaRegistry, sealer: Sealer
) -> Backfilled | None:
    """Facts for the next ``BACKFILL_BATCH`` reports after ``after`` (by id) accepted
    before statistics were kept, read from each payload the hub still holds and counted
    for the hub, the sender and every agency it was routed to; None when none are left.
    A purged report's facts cannot be read any more, nor those of a type the registry no
    longer has: they are counted as missing. The caller commits each batch, so a long
    backfill holds no lock for long."""
    have = select(col(StatFact.report_id)).where(col(StatFact.reader) == HUB)
    batch = session.exec(
        sqlmodel_select(Report)
        .where(col(Report.id) > after, col(Report.id).not_in(have))
        .order_by(col(Report.id))
        .limit(BACKFILL_BATCH)
    ).all()
    if not batch:
        return None
    done = Backfilled(last=batch[-1].id)
    for report in batch:
        if report.purged_at is not None or not report.payload:
            done.purged_without_facts += 1
        elif report.type not in registry.names() or report.version not in {
            known.version for known in registry.versions(report.type)
        }:
            done.unknown_type += 1
        else:
            _backfill_one(session, report, registry=registry, sealer=sealer)
            done.counted += 1
    return done


def record_backfill(session: Session, *, done: Backfilled, actor: str) -> None:
    audit.record(
        session,
        action="statistics.backfilled",
        subject="statistics",
        actor=actor,
        details={
            "counted": done.counted,
            "purged_without_facts": done.purged_without_facts,
            "unknown_type": done.unknown_type,
        },
    )


@dataclass(frozen=True)
class Trend:
    """An indicator's reports per month, and whether its last month rose above what its
    own months before and the other indicators predict (the hotspot rule, with months
    for periods and the other indicators for neighbours): a modus operandi spreading."""

    indicator: str
    label: str
    counts: list[int]
    expected: float
    rising: bool


def trends(
    session: Session,
    *,
    reader: str,
    within: str,
    today: date,
    registry: SchemaRegistry,
    locale: Locale = "en",
    months: int = 12,
) -> tuple[list[str], list[Trend]]:
    """The last ``months`` whole calendar months (``YYYY-MM``) and each indicator's
    reports in them that ``reader`` may see, in the area."""
    first_of_this = date(today.year, today.month, 1)
    start = first_of_this
    for _ in range(months):
        start = date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
    period = Period(start, first_of_this - timedelta(days=1))
    query = StatsQuery(within=within, group_by="month")
    _check(replace(query, level="desa"), registry)
    month = _group_column(query, period)
    statement = (
        select(col(StatIndicator.indicator), month, func.count())
        .select_from(StatFact)
        .join(StatIndicator, col(StatIndicator.report_id) == col(StatFact.report_id))
        .where(
            *_area(StatFact, query, reader),
            col(StatFact.day).between(period.start.toordinal(), period.end.toordinal()),
        )
        .group_by(col(StatIndicator.indicator), month)
    )
    labels = [date.fromordinal(first).strftime("%Y-%m") for first in Window.of(period).months]
    counts: dict[str, list[int]] = {}
    for indicator, label, count in session.execute(statement).all():
        counts.setdefault(indicator, [0] * len(labels))[labels.index(label)] += int(count)
    names = registry.indicator_labels()
    judged = hotspots.assess(
        {name: series[-1] for name, series in counts.items()},
        {name: sum(series[:-1]) for name, series in counts.items()},
        dict.fromkeys(counts, ""),
        periods=len(labels) - 1,
    )
    found = [
        Trend(
            indicator=name,
            label=names.get(name, {}).get(locale, name),
            counts=series,
            expected=judged[name].expected,
            rising=judged[name].flagged,
        )
        for name, series in counts.items()
    ]
    found.sort(key=lambda trend: (not trend.rising, -sum(trend.counts), trend.indicator))
    return labels, found
