"""What the statistics API answers."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

Level = Literal["kabupaten", "kecamatan", "desa"]
Dimension = Literal["indicator", "destination", "severity", "month", "type"]
# Each report falls in exactly one group of these: a row's groups add up to its total.
ADDITIVE: frozenset[str] = frozenset({"destination", "severity", "month", "type"})


class HotspotOut(BaseModel):
    expected: float = Field(description="Reports the region's history and neighbours predict.")
    excess: float = Field(description="Observed minus expected.")
    p_value: float | None = Field(
        description="P(count ≥ observed) under the region's history (Poisson-gamma); "
        "null at or below the expected count."
    )
    flagged: bool


class Figures(BaseModel):
    """Counts for the period and the one before it; ``null`` where withheld (public mode)
    or not known (a rate without a population)."""

    reports: int | None
    people: int | None
    previous_reports: int | None
    previous_people: int | None
    change_reports: int | None
    change_people: int | None
    reports_per_100k: float | None = None
    people_per_100k: float | None = None
    withheld: bool = False
    previous_withheld: bool = False


class GroupFigures(Figures):
    group: str = Field(description='The group\'s value ("" when the report did not say).')
    label: str


class RegionFigures(Figures):
    code: str = Field(description='Kemendagri code; "" for the reports placed no deeper.')
    name: str
    population: int | None = None
    hotspot: HotspotOut | None = None
    groups: list[GroupFigures] = []


class Statistics(BaseModel):
    level: Level
    within: str
    within_name: str
    period_from: date = Field(serialization_alias="from")
    period_to: date = Field(serialization_alias="to")
    previous_from: date
    previous_to: date
    type: str | None
    indicator: str | None
    group_by: Dimension | None
    public: bool
    threshold: int | None = Field(description="Public mode: the smallest count published.")
    regions: list[RegionFigures]
    unplaced: RegionFigures = Field(
        description="Reports within the area whose place is not as deep as the level."
    )
    total: RegionFigures
