"""Counts of reports and people at risk by region, period and group, for a reader (the
reports it may see) or for publication (every report, small cells withheld). Functions
take the session first and never commit."""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
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
from exchange.statistics.facts import CODE_LENGTHS, HUB, LEVELS
from exchange.statistics.models import StatFact, StatIndicator
from exchange.statistics.suppression import Count, Relation

DEFAULT_DAYS = 30
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


def periods(query: StatsQuery, *, today: date) -> tuple[Period, Period]:
    """The period asked for and the one before it. In public mode both are whole calendar
    years that have ended: a table published for a period still open would change day by
    day, and two days' tables would differ by the reports between them."""
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


def _check(query: StatsQuery, registry: SchemaRegistry) -> None:
    depth = len(query.within)
    if depth not in (2, 5, 8) or depth >= CODE_LENGTHS[query.level]:
        raise InvalidInput.at(t("stats.within_level", level=query.level), "/within")
    if query.type is not None and query.type not in registry.names():
        raise InvalidInput.at(t("stats.unknown_type", type=query.type), "/type")
    if query.public and (query.type or query.indicator):
        raise InvalidInput.at(t("stats.public_filters"), "/type" if query.type else "/indicator")


def _level_of(code: str) -> str:
    return next(level for level, length in CODE_LENGTHS.items() if length == len(code))


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


def _tally(
    session: Session,
    *,
    reader: str,
    query: StatsQuery,
    path: Sequence[str],
    buckets: Sequence[Period],
    people_buckets: int,
    group: ColumnElement[Any],
) -> Iterable[tuple[Any, ...]]:
    """One pass over the reader's facts in the area: per place (``path``: the level
    columns to group by) and group, the reports in each bucket and the people in the
    first ``people_buckets``."""
    day = col(StatFact.day)
    in_bucket = [day.between(b.start.toordinal(), b.end.toordinal()) for b in buckets]
    columns: list[Any] = [getattr(StatFact, level) for level in path]
    statement = select(
        *columns,
        group,
        *(func.sum(case((inside, 1), else_=0)) for inside in in_bucket),
        *(
            func.sum(case((inside, StatFact.people), else_=0))
            for inside in in_bucket[:people_buckets]
        ),
    )
    conditions = [
        col(StatFact.reader) == reader,
        getattr(StatFact, _level_of(query.within)) == query.within,
        day.between(
            min(b.start for b in buckets).toordinal(), max(b.end for b in buckets).toordinal()
        ),
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
    return session.execute(statement).all()


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
    buckets: Sequence[Period],
    group: ColumnElement[Any] | None,
) -> _Cells:
    """Counts by (node, group) at every level down to ``depth``: the region totals from
    one pass, each group's from a second when the query has groups (a report raising two
    indicators counts once in its region's total and once under each)."""
    cells = _Cells()
    passes: list[tuple[ColumnElement[Any], int]] = [(literal(TOTAL), len(buckets))]
    if group is not None:
        passes.append((group, 2))
    for grouping, report_buckets in passes:
        for row in _tally(
            session,
            reader=reader,
            query=query,
            path=LEVELS[:depth],
            buckets=buckets[:report_buckets],
            people_buckets=2,
            group=grouping,
        ):
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
            buckets=[current, previous],
            group=grouping,
        )
        additive = query.group_by in ADDITIVE
        hidden = (
            _public_hidden(cells, bucket=0, additive=additive),
            _public_hidden(cells, bucket=1, additive=additive),
        )
    else:
        history = [current.before(n) for n in range(1, hotspots.HISTORY + 1)]
        cells = _count(
            session,
            reader=reader,
            query=query,
            depth=depth,
            buckets=[current, *history] if mark_hotspots else [current, previous],
            group=grouping,
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
        found = hotspots.assess(
            {code: cells.count((code, TOTAL), 0).reports for code in names},
            {code: cells.reports.get((code, TOTAL), [0] * 10)[1:] for code in names},
            {code: regions.parents(code)[0] for code in names},
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


@dataclass(frozen=True)
class Backfilled:
    counted: int
    purged_without_facts: int


def backfill(
    session: Session, *, registry: SchemaRegistry, sealer: Sealer, actor: str
) -> Backfilled:
    """Facts for the reports accepted before statistics were kept: read from each payload
    the hub still holds, counted for the hub, the sender and every agency it was routed
    to. A purged report's facts cannot be read any more; they are counted as missing."""
    have = select(col(StatFact.report_id)).where(col(StatFact.reader) == HUB)
    missing = session.exec(
        sqlmodel_select(Report).where(col(Report.id).not_in(have)).order_by(col(Report.id))
    ).all()
    counted = purged = 0
    for report in missing:
        if report.purged_at is not None or not report.payload:
            purged += 1
            continue
        canonical = vault.unlock(
            session, report_id=report.id, ciphertext=report.payload, sealer=sealer
        )
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
        counted += 1
    audit.record(
        session,
        action="statistics.backfilled",
        subject="statistics",
        actor=actor,
        details={"counted": counted, "purged_without_facts": purged},
    )
    return Backfilled(counted=counted, purged_without_facts=purged)
