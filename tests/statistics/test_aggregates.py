"""The aggregates against a brute-force recount of 5,000 generated reports over Banten's
1,551 villages, on SQLite and PostgreSQL, for every level and filter and for each reader;
public tables withhold every small cell and no withheld value follows from the rest."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from exchange.hub import Hub
from exchange.regions import service as regions
from exchange.statistics import service
from exchange.statistics.contracts import Statistics
from exchange.statistics.service import StatsQuery
from exchange.statistics.suppression import THRESHOLD
from tests.statistics.corpus import (
    INDICATORS,
    READERS,
    TYPES,
    banten_directory,
    banten_villages,
    generate,
    load,
    recount,
)

TODAY = date(2026, 11, 30)
START = date(2025, 1, 1)
CORPUS = generate(5000, seed=13, start=START, days=(TODAY - START).days)
LEVEL_LENGTHS = {"kabupaten": 5, "kecamatan": 8, "desa": 13}


@pytest.fixture
def corpus_hub(hub: Hub) -> Hub:
    with hub.session() as session:
        regions.import_directory(session, lines=banten_directory(), actor="test")
    load(hub, CORPUS)
    return hub


def answer(hub: Hub, reader: str, **query: Any) -> Statistics:
    with hub.session() as session:
        return service.statistics(
            session, reader=reader, query=StatsQuery(**query), registry=hub.registry, today=TODAY
        )


def counted(statistics: Statistics) -> tuple[Counter[str], Counter[str]]:
    reports: Counter[str] = Counter()
    people: Counter[str] = Counter()
    for row in [*statistics.regions, statistics.unplaced]:
        if row.reports:
            reports[row.code] = row.reports
        if row.people:
            people[row.code] = row.people
    return reports, people


def test_the_corpus_covers_every_village() -> None:
    assert len(banten_villages()) == 1552  # 1,551 with a boundary, and 36.02.28.2009
    assert len({fact.place for fact in CORPUS if len(fact.place) == 13}) > 1200


@pytest.mark.parametrize("level", ["kabupaten", "kecamatan", "desa"])
def test_counts_equal_a_recount_for_every_reader_and_filter(corpus_hub: Hub, level: str) -> None:
    period = {"period_from": date(2026, 3, 1), "period_to": date(2026, 8, 31)}
    length = period["period_to"] - period["period_from"] + timedelta(days=1)
    before = (period["period_from"] - length, period["period_from"] - timedelta(days=1))
    filters: list[dict[str, str]] = [
        {},
        {"type": TYPES[1]},
        {"indicator": INDICATORS[0]},
        {"type": TYPES[0], "indicator": INDICATORS[2]},
    ]
    for reader in [*READERS, ""]:
        for chosen in filters:
            for within in ("36", "36.03") if level != "kabupaten" else ("36",):
                got = answer(corpus_hub, reader, level=level, within=within, **period, **chosen)
                expected = recount(
                    CORPUS,
                    reader=reader or None,
                    level_length=LEVEL_LENGTHS[level],
                    within=within,
                    start=period["period_from"],
                    end=period["period_to"],
                    type_=chosen.get("type"),
                    indicator=chosen.get("indicator"),
                )
                assert counted(got) == expected, (reader, chosen, within)
                assert got.total.reports == sum(expected[0].values())
                previous = recount(
                    CORPUS,
                    reader=reader or None,
                    level_length=LEVEL_LENGTHS[level],
                    within=within,
                    start=before[0],
                    end=before[1],
                    type_=chosen.get("type"),
                    indicator=chosen.get("indicator"),
                )
                assert got.total.previous_reports == sum(previous[0].values())
                assert {
                    row.code: row.previous_reports for row in got.regions if row.previous_reports
                } == {code: n for code, n in previous[0].items() if code}
    assert (got.previous_from, got.previous_to) == before


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 3, 10), date(2026, 8, 20)),  # months inside, days at both ends
        (date(2026, 11, 1), date(2026, 11, 30)),  # one month, the default's shape
        (date(2026, 2, 3), date(2026, 2, 3)),  # one day
    ],
)
def test_periods_of_whole_months_and_loose_days_count_the_same(
    corpus_hub: Hub, start: date, end: date
) -> None:
    """Whole months are read from the month tallies, the other days from the day
    tallies, a filtered count from the facts: all three agree with the recount."""
    for reader in ("", READERS[1]):
        for chosen in ({}, {"type": TYPES[2]}):
            got = answer(
                corpus_hub,
                reader,
                level="desa",
                within="36",
                period_from=start,
                period_to=end,
                **chosen,
            )
            expected = recount(
                CORPUS,
                reader=reader or None,
                level_length=13,
                within="36",
                start=start,
                end=end,
                type_=chosen.get("type"),
            )
            assert counted(got) == expected, (reader, chosen)


@pytest.mark.parametrize("dimension", ["indicator", "destination", "severity", "month", "type"])
def test_groups_equal_a_recount(corpus_hub: Hub, dimension: str) -> None:
    start, end = date(2026, 1, 1), date(2026, 6, 30)
    got = answer(
        corpus_hub,
        READERS[0],
        level="kecamatan",
        within="36.01",
        period_from=start,
        period_to=end,
        group_by=dimension,
    )
    expected: Counter[tuple[str, str]] = Counter()
    for fact in CORPUS:
        if READERS[0] not in fact.readers or not start <= fact.day <= end:
            continue
        if not fact.place.startswith("36.01"):
            continue
        region = fact.at(8)
        values = {
            "indicator": sorted(fact.indicators) or [""],
            "destination": [fact.destination],
            "severity": [fact.severity],
            "month": [fact.day.strftime("%Y-%m")],
            "type": [fact.type],
        }[dimension]
        for value in values:
            expected[(region, value)] += 1
    found = Counter(
        {
            (row.code, group.group): group.reports
            for row in [*got.regions, got.unplaced]
            for group in row.groups
            if group.reports
        }
    )
    assert found == expected
    # Every group is a value of this period (the period before's months are not groups).
    assert all(group.group or dimension != "month" for row in got.regions for group in row.groups)


def test_rates_divide_by_the_regency_population(corpus_hub: Hub) -> None:
    got = answer(corpus_hub, "", level="kabupaten", within="36")
    populations = regions.populations()
    for row in got.regions:
        assert row.population == populations[row.code]
        assert row.reports is not None
        assert row.reports_per_100k == round(row.reports * 100_000 / populations[row.code], 2)


def test_the_days_are_counted_in_wib(corpus_hub: Hub) -> None:
    """Each report arrived at 23:30 WIB, already the next day in UTC."""
    day = CORPUS[0].day
    got = answer(corpus_hub, "", level="kabupaten", period_from=day, period_to=day)
    assert got.total.reports == sum(
        1 for fact in CORPUS if fact.day == day and fact.place.startswith("36")
    )


# --- publication ------------------------------------------------------------------------------


def _published_table(hub: Hub, group_by: str | None) -> dict[str, Statistics]:
    return {
        level: answer(hub, "", level=level, within=within, public=True, group_by=group_by)
        for level, within in (("kabupaten", "36"), ("kecamatan", "36"), ("desa", "36"))
    }


@pytest.mark.parametrize("group_by", [None, "severity", "indicator"])
def test_public_tables_withhold_small_cells_and_cannot_be_undone(
    corpus_hub: Hub, group_by: str | None
) -> None:
    tables = _published_table(corpus_hub, group_by)
    truth: dict[tuple[str, str], tuple[int, int]] = {}
    shown: dict[tuple[str, str], tuple[int, int]] = {}
    year = date(TODAY.year - 1, 1, 1), date(TODAY.year - 1, 12, 31)
    for level, table in tables.items():
        assert (table.period_from, table.period_to) == year
        length = LEVEL_LENGTHS[level]
        exact = recount(
            CORPUS, reader=None, level_length=length, within="36", start=year[0], end=year[1]
        )
        rows = [*table.regions, table.unplaced, table.total]
        for row in rows:
            node = row.code or f"unplaced<{length}"
            cells = [(None, row), *((g.group, g) for g in row.groups)]
            for group, figures in cells:
                key = (node, group or "")
                if figures.withheld:
                    assert figures.reports is None
                    assert figures.people is None
                    continue
                assert figures.reports is not None
                assert figures.people is not None
                for value in (figures.reports, figures.people):
                    assert value == 0 or value >= THRESHOLD, (key, value)
                shown[key] = (figures.reports, figures.people)
            if group_by is None:
                truth[(node, "")] = (
                    exact[0][row.code] if row.code != "36" else sum(exact[0].values()),
                    exact[1][row.code] if row.code != "36" else sum(exact[1].values()),
                )
        withheld = sum(1 for row in table.regions if row.withheld)
        if level == "desa":
            assert withheld > 0  # the corpus has small villages: the rule had work to do
    if group_by is None:
        for key, value in shown.items():
            assert value == truth[key], key  # what is published is true
    _attack(tables, group_by, year)


def _truth(node: str, group: str, group_by: str | None, year: tuple[date, date]) -> int:
    """Reports of the public year in a node (a region, or ``unplaced:<code>``: the reports
    placed at that region and no deeper) and group, by brute force."""
    total = 0
    for fact in CORPUS:
        if not year[0] <= fact.day <= year[1]:
            continue
        if node.startswith("unplaced:"):
            if fact.place != node.removeprefix("unplaced:"):
                continue
        elif not fact.place.startswith(node):
            continue
        if group and group_by == "severity" and fact.severity != group:
            continue
        if group and group_by == "indicator" and group not in (sorted(fact.indicators) or [""]):
            continue
        total += 1
    return total


def _attack(tables: dict[str, Statistics], group_by: str | None, year: tuple[date, date]) -> None:
    """Try to work out a withheld count from the published ones, reports and people
    alike: every sum the tables imply (a region is its children plus the reports placed
    at it and no deeper; each table's unplaced row is the sum of those buckets above its
    level; a row is its groups when each report falls in one), solved for any single
    unknown, again and again. A withheld cell found is a failure, and so is a small
    bucket of unplaced reports (never published on its own)."""
    regency_codes = [r.code for r in tables["kabupaten"].regions]
    district_codes = [r.code for r in tables["kecamatan"].regions]
    village_codes = [r.code for r in tables["desa"].regions]
    groups = {""} | {
        g.group for table in tables.values() for row in table.regions for g in row.groups
    }
    for measure in ("reports", "people"):
        known: dict[tuple[str, str], int] = {}
        withheld: set[tuple[str, str]] = set()
        for level, table in tables.items():
            for row in [*table.regions, table.unplaced, table.total]:
                node = row.code if row.code else f"answer-unplaced:{level}"
                for group, figures in [("", row), *((g.group, g) for g in row.groups)]:
                    if figures.withheld:
                        withheld.add((node, group))
                    else:
                        known[(node, group)] = getattr(figures, measure) or 0
        relations = []
        for g in groups:
            relations.append((("36", g), [(c, g) for c in regency_codes] + [("unplaced:36", g)]))
            for regency in regency_codes:
                kids = [(c, g) for c in district_codes if c.startswith(regency + ".")]
                relations.append(((regency, g), [*kids, (f"unplaced:{regency}", g)]))
            for district in district_codes:
                kids = [(c, g) for c in village_codes if c.startswith(district + ".")]
                relations.append(((district, g), [*kids, (f"unplaced:{district}", g)]))
            shallow = [("unplaced:36", g)]
            relations.append((("answer-unplaced:kabupaten", g), list(shallow)))
            shallow += [(f"unplaced:{c}", g) for c in regency_codes]
            relations.append((("answer-unplaced:kecamatan", g), list(shallow)))
            shallow += [(f"unplaced:{c}", g) for c in district_codes]
            relations.append((("answer-unplaced:desa", g), list(shallow)))
        if group_by == "severity":
            nodes = {node for node, _ in known} | {node for node, _ in withheld}
            for node in nodes:
                relations.append(((node, ""), [(node, g) for g in groups if g]))
        progress = True
        while progress:
            progress = False
            for total, members in relations:
                missing = [cell for cell in [total, *members] if cell not in known]
                if len(missing) != 1:
                    continue
                (cell,) = missing
                rest = sum(known[m] for m in members if m != cell)
                known[cell] = rest if cell == total else known[total] - rest
                progress = True
                assert cell not in withheld, f"{measure} of withheld {cell} follows from the rest"
                if cell[0].startswith("unplaced:") and measure == "reports":
                    value = _truth(cell[0], cell[1], group_by, year)
                    assert value == 0 or value >= THRESHOLD, f"small bucket {cell} = {value}"


def test_public_mode_refuses_what_would_open_it(corpus_hub: Hub) -> None:
    from exchange.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        answer(corpus_hub, "", public=True, type=TYPES[0])
    assert refused.value.details[0].pointer == "/type"
    with pytest.raises(InvalidInput) as refused:
        answer(
            corpus_hub,
            "",
            public=True,
            period_from=date(2026, 1, 1),
            period_to=date(2026, 6, 30),
        )
    assert refused.value.details[0].pointer == "/from"
    with pytest.raises(InvalidInput):  # the current year has not ended
        answer(
            corpus_hub, "", public=True, period_from=date(2026, 1, 1), period_to=date(2026, 12, 31)
        )
