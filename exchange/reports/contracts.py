"""The shapes of submissions and their results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Tlp = Literal["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
ReportId = Annotated[str, Field(pattern="^[0-9a-f]{32}$")]
AgencyId = Annotated[str, Field(min_length=1, max_length=63)]


class ReportSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)] | None = None
    tlp: Tlp | None = None
    payload: dict[str, Any]
    refs: Annotated[list[ReportId], Field(max_length=100)] = []
    recipients: Annotated[list[AgencyId], Field(max_length=100)] = Field(
        default=[],
        description="Agencies named as this report's audience: the only ones a RED or "
        "AMBER+STRICT report reaches, and reached under AMBER wherever their jurisdiction.",
    )


class BulkLine(ReportSubmission):
    """One line of a bulk submission: a submission with its own key and signature."""

    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    signature: Annotated[str, Field(max_length=400)] | None = None


class Warning_(BaseModel):
    code: str
    pointer: str
    message: str


class SubmissionResult(BaseModel):
    id: str
    type: str
    version: int
    tlp: Tlp
    payload_hash: str
    received_at: datetime
    audit_event_id: str
    warnings: list[Warning_] = []


class ReportOut(BaseModel):
    id: str
    type: str
    version: int
    sender: str
    tlp: Tlp
    refs: list[str]
    recipients: list[str]
    payload_hash: str
    received_at: datetime
    payload: dict[str, Any]
    withheld: list[str] = Field(
        description="JSON pointers of fields removed because the reader's clearance does not "
        "cover them."
    )
    earlier_reports: int = Field(
        description="Earlier reports the reader may see that name a person this one names "
        "(matched by keyed hashes of NIKs and passport numbers)."
    )


class Purged(BaseModel):
    id: str
    purged_at: datetime
    payload_hash: str
