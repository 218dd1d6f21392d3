"""Tables of the routing domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, ForeignKey, Index, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from exchange.models import UTCDateTime, utcnow


def config_purpose(subscription_id: str) -> str:
    """What a subscription's sealed config is bound to: sealed for one subscription, it
    cannot be unsealed as another's."""
    return f"subscription-config:{subscription_id}"


class Subscription(SQLModel, table=True):
    """An agency's standing request for reports, and how they reach it."""

    __tablename__ = "subscription"

    id: str = Field(primary_key=True, max_length=32)
    agency_id: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    label: str = Field(default="", max_length=200)
    # Filters; an empty list matches everything. JSON arrays of strings.
    types: str = Field(sa_column=Column(Text, nullable=False))
    regions: str = Field(sa_column=Column(Text, nullable=False))
    indicators: str = Field(sa_column=Column(Text, nullable=False))
    min_severity: str | None = Field(default=None, max_length=16)
    connector: str = Field(max_length=64)
    config_shown: str = Field(sa_column=Column(Text, nullable=False))  # secrets masked
    config_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # AES-GCM
    throttle_per_s: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    # The earliest moment the next delivery may start under the throttle.
    next_slot_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    active: bool = Field(default=True)
    disabled_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SubscriptionMatch(SQLModel, table=True):
    """What a subscription's type and region filters select, one row per (type, region)
    pair, empty meaning any: routing looks a report up here by index, so its cost grows
    with the subscriptions that match, not with all there are."""

    __tablename__ = "subscription_match"
    __table_args__ = (Index("ix_subscription_match_type_region", "type", "region"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(
        sa_column=Column(String(32), ForeignKey("subscription.id"), nullable=False, index=True)
    )
    type: str = Field(max_length=64)  # a report type, or "" for any
    region: str = Field(max_length=13)  # a region-code prefix, or "" for anywhere
