"""``inbox``: nothing is pushed; the envelope waits for the recipient to pull it with
``GET /v1/inbox`` and to acknowledge it with ``POST /v1/inbox/ack``. A read leases it to the
reader for ``lease_s``; unacknowledged, it comes back when the lease runs out."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import ConnectorContext, Delivered, Envelope


class InboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_s: int = Field(
        default=300,
        ge=5,
        le=86_400,
        description="How long a read envelope stays hidden from other reads awaiting its ack.",
    )


class InboxConnector:
    name: ClassVar[str] = "inbox"
    config_model: ClassVar[type[BaseModel]] = InboxConfig

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def check(self, config: InboxConfig) -> None:
        """Any deployment has an inbox."""

    def deliver(self, envelope: Envelope, config: InboxConfig) -> Delivered:
        return Delivered(detail="in the inbox")
