"""The shapes of submissions and their results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from exchange.contracts import RowOut

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
        "AMBER+STRICT report reaches, and reached under AMBER wherever their jurisdiction. "
        "Agencies named in the payload's recipient fields (a referral's `receiving_agency`) "
        "are added.",
    )
    allow_no_recipient: bool = Field(
        default=False,
        description="Accept the report even if no agency but the sender would receive it "
        "(it is refused with `no_recipient` otherwise).",
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
    recipients: list[str] = Field(
        description="The report's named audience: `recipients` as sent, with the agencies "
        "its payload names."
    )
    routed_to: list[str] = Field(description="Agencies the report is being delivered to.")
    withheld_by_tlp: list[str] = Field(
        description="Agencies whose subscriptions wanted the report but whom its TLP marking "
        "does not allow to receive it."
    )
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


class ReportItem(ReportOut):
    """A report in a search page: a purged one has no payload."""

    payload: dict[str, Any] | None  # type: ignore[assignment]
    region: str | None
    severity: str | None
    purged_at: datetime | None


class ReportPage(BaseModel):
    items: list[ReportItem]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class SentDelivery(RowOut):
    """One delivery of a report, as its sender sees it: to whom, how far it got, and who
    acknowledged it. Nothing of the recipient's endpoint or secrets."""

    id: str
    agency_id: str = Field(description="The recipient agency.")
    state: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="The recipient's key that acknowledged it.")
    receipt_verified: bool = Field(
        description="The recipient acknowledged with a receipt signed by one of its registered "
        "signing keys, which the hub verified."
    )

    @classmethod
    def of(cls, row: Any) -> SentDelivery:
        return cls.model_validate(
            {
                **{name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)},
                "receipt_verified": row.receipt_key_id is not None,
            }
        )


class ThreadEntry(BaseModel):
    id: str
    type: str
    version: int
    sender: str
    tlp: Tlp
    region: str | None
    severity: str | None
    received_at: datetime
    purged_at: datetime | None
    refs: list[str] = Field(description="The reports of this thread it refers to.")


class ReportThread(BaseModel):
    report_id: str
    reports: list[ThreadEntry] = Field(description="Oldest first.")


class PersonLookup(BaseModel):
    """One identifier to look up: a NIK or a passport number, never both."""

    model_config = ConfigDict(extra="forbid")

    nik: Annotated[str, Field(pattern="^[0-9]{16}$")] | None = None
    passport_number: Annotated[str, Field(pattern="^[A-Za-z0-9]{6,9}$")] | None = None


class PersonMatch(RowOut):
    id: str
    type: str
    sender: str
    tlp: Tlp
    received_at: datetime


class PersonLookupResult(BaseModel):
    matches: list[PersonMatch] = Field(description="Newest first, at most 100.")


class Purged(BaseModel):
    id: str
    purged_at: datetime
    payload_hash: str
