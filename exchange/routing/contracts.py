"""The shapes of subscriptions over HTTP and the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from exchange.routing.models import Subscription

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
RegionPrefix = Annotated[str, Field(pattern=r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")]
Indicator = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
TypeName = Annotated[str, Field(min_length=1, max_length=64)]


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


class SubscriptionIssued(SubscriptionOut):
    """The answer to a creation or a secret rotation: the only time secrets are shown."""

    secrets: dict[str, str]
