"""Tables of the statistics domain. They hold no person: codes, counts and enumerations
only, so purge leaves them (see ``exchange.statistics.facts``)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel


class StatFact(SQLModel, table=True):
    """One report as one reader counts it: a row for the hub as a whole (``reader`` empty,
    what publication counts), one for the sender and one for each agency it was routed
    to, the readers the visibility rule names. Keyed reader first, then the place from
    the province down and the day, so that one reader's counts for an area are one range
    of the key (a clustered table where the database has them: SQLite's WITHOUT ROWID)."""

    __tablename__ = "stat_fact"
    __table_args__ = (
        Index("ix_stat_fact_report", "report_id", "reader"),
        {"sqlite_with_rowid": False},
    )

    reader: str = Field(sa_column=Column(String(63), primary_key=True))
    # The report's place at each level ("" below the depth its code reaches).
    province: str = Field(sa_column=Column(String(2), primary_key=True))
    kabupaten: str = Field(sa_column=Column(String(5), primary_key=True))
    kecamatan: str = Field(sa_column=Column(String(8), primary_key=True))
    desa: str = Field(sa_column=Column(String(13), primary_key=True))
    # The day the hub received it, in WIB, as a proleptic Gregorian ordinal
    # (date.toordinal()): an integer compares faster than a date in SQLite.
    day: int = Field(sa_column=Column(Integer, primary_key=True))
    report_id: str = Field(sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True))
    type: str = Field(sa_column=Column(String(64), nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    severity: str = Field(sa_column=Column(String(16), nullable=False))  # "" when not given
    destination: str = Field(sa_column=Column(String(2), nullable=False))  # "" when unknown
    people: int = Field(sa_column=Column(Integer, nullable=False))


class StatIndicator(SQLModel, table=True):
    """An early-warning indicator a report raises."""

    __tablename__ = "stat_indicator"
    __table_args__ = (Index("ix_stat_indicator_indicator", "indicator", "report_id"),)

    report_id: str = Field(sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True))
    indicator: str = Field(sa_column=Column(String(64), primary_key=True))


class StatPerson(SQLModel, table=True):
    """How many of a report's people fall in an age band and gender ("" when not given)."""

    __tablename__ = "stat_person"

    report_id: str = Field(sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True))
    age_band: str = Field(sa_column=Column(String(8), primary_key=True))
    gender: str = Field(sa_column=Column(String(32), primary_key=True))
    people: int = Field(sa_column=Column(Integer, nullable=False))


class StatTally(SQLModel, table=True):
    """How many reports (and people at risk) a reader counts at a place on a day
    (``grain`` ``d``) and in a month (``m``, ``start`` its first day): what a count with
    no filter reads instead of one row per report, a month at a time where the period
    covers whole months. Kept beside ``stat_fact`` by the same writes."""

    __tablename__ = "stat_tally"
    __table_args__ = ({"sqlite_with_rowid": False},)

    reader: str = Field(sa_column=Column(String(63), primary_key=True))
    grain: str = Field(sa_column=Column(String(1), primary_key=True))
    province: str = Field(sa_column=Column(String(2), primary_key=True))
    kabupaten: str = Field(sa_column=Column(String(5), primary_key=True))
    kecamatan: str = Field(sa_column=Column(String(8), primary_key=True))
    desa: str = Field(sa_column=Column(String(13), primary_key=True))
    start: int = Field(sa_column=Column(Integer, primary_key=True))  # a day's ordinal
    reports: int = Field(sa_column=Column(Integer, nullable=False))
    people: int = Field(sa_column=Column(Integer, nullable=False))
