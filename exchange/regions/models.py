"""Tables of the region directory."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Region(SQLModel, table=True):
    __tablename__ = "region"

    code: str = Field(primary_key=True, max_length=13)  # 36, 36.03, 36.03.11, 36.03.11.2009
    name: str = Field(max_length=200)
