"""Tables of the region directory."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel


class Region(SQLModel, table=True):
    __tablename__ = "region"

    code: str = Field(primary_key=True, max_length=13)  # 36, 36.03, 36.03.11, 36.03.11.2009
    name: str = Field(max_length=200)


class RegionBoundary(SQLModel, table=True):
    """A region's outline (a Polygon or MultiPolygon in longitude and latitude, as WKB:
    read back a thousand times faster than GeoJSON) and a point inside it to mark it by:
    what the statistics map and the GeoJSON export are drawn from."""

    __tablename__ = "region_boundary"

    code: str = Field(primary_key=True, max_length=13)
    shape: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    longitude: float
    latitude: float
