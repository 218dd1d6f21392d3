"""The shapes of subscriptions over HTTP and the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from exchange.routing.models import Subscription

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
RegionPrefix = Annotated[str, Field(pattern=r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$")]
Indicator = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
TypeName = Annotated[str, Field(min_length=1, max_length=64)]


def _iso_duration(value: Any) -> Any:
    """Only ISO 8601 durations (``PT24H``, ``P7D``): pydantic would also take a number of
    seconds or ``HH:MM:SS``, which a form or a hand-written request gets wrong silently."""
    if not isinstance(value, str) or not value.startswith("P"):
        raise PydanticCustomError(
            "iso_duration", "an ISO 8601 duration such as PT24H (24 hours) or P7D (7 days)"
        )
    return value


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, Field(max_length=200)] = ""
    types: Annotated[list[TypeName], Field(max_length=50)] = Field(
        default=[], description="Report types wanted; empty means every type."
    )
    regions: Annotated[list[RegionPrefix], Field(max_length=200)] = Field(
        default=[],
        description="Region-code prefixes (`36`, `36.03`, `36.03.11.2009`); empty "
        "means everywhere the rules allow.",
    )
    min_severity: Severity | None = None
    indicators: Annotated[list[Indicator], Field(max_length=100)] = Field(
        default=[], description="Any-of: a report matches if it carries at least one."
    )
    connector: Annotated[str, Field(min_length=1, max_length=64)]
    config: dict[str, Any] = Field(
        default={}, description="The connector's settings, checked against its config model."
    )
    throttle_per_s: Annotated[float, Field(gt=0, le=10_000)] | None = Field(
        default=None, description="At most this many deliveries a second to this subscription."
    )
    backfill: Annotated[timedelta, BeforeValidator(_iso_duration)] | None = Field(
        default=None,
        description="Also deliver the matching reports received in this period before now "
        "that the agency may receive (ISO 8601 duration, e.g. `PT24H`; at most the retention "
        "of the types asked for).",
        json_schema_extra={"type": "string", "format": "duration"},
    )


class SubscriptionOut(BaseModel):
    """A subscription as its owner sees it: filters decoded, the config's secrets masked."""

    id: str
    agency_id: str
    label: str
    types: list[str]
    regions: list[str]
    min_severity: str | None
    indicators: list[str]
    connector: str
    config: dict[str, Any]
    throttle_per_s: float | None
    active: bool
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, subscription: Subscription) -> SubscriptionOut:
        return cls(
            id=subscription.id,
            agency_id=subscription.agency_id,
            label=subscription.label,
            types=json.loads(subscription.types),
            regions=json.loads(subscription.regions),
            min_severity=subscription.min_severity,
            indicators=json.loads(subscription.indicators),
            connector=subscription.connector,
            config=json.loads(subscription.config_shown),
            throttle_per_s=subscription.throttle_per_s,
            active=subscription.active,
            disabled_reason=subscription.disabled_reason,
            created_at=subscription.created_at,
        )


class Backfill(BaseModel):
    since: datetime
    reports: int = Field(description="Earlier reports queued for delivery.")
    truncated: bool = Field(
        description="More reports matched than the hub backfills at once; the newest were "
        "taken (search finds the others)."
    )


class SubscriptionIssued(SubscriptionOut):
    """The answer to a creation or a secret rotation: the only time secrets are shown."""

    secrets: dict[str, str]
    backfill: Backfill | None = None
