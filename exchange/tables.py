"""Every table of the hub, gathered so that migrations and tests see the whole schema."""

from sqlmodel import SQLModel

from exchange.accounts.models import ConsoleSession, User
from exchange.agencies.models import Agency, ApiKey, SigningKey
from exchange.audit.models import AuditEvent, AuditNode, Cosignature, SignedCheckpoint
from exchange.delivery.models import Delivery, DeliveryAttempt
from exchange.directory import DirectoryVersion
from exchange.intake.models import FieldDraft, Intake, IntakeMessage
from exchange.ops.models import Probe
from exchange.protection.models import PersonLink, ReportKey
from exchange.regions.models import Region, RegionBoundary
from exchange.reports.models import IdempotencyRecord, Report, ReportFacet, ReportRef
from exchange.routing.models import Subscription, SubscriptionMatch
from exchange.statistics.models import StatFact, StatIndicator, StatPerson, StatTally

metadata = SQLModel.metadata

__all__ = [
    "Agency",
    "ApiKey",
    "AuditEvent",
    "AuditNode",
    "ConsoleSession",
    "Cosignature",
    "Delivery",
    "DeliveryAttempt",
    "DirectoryVersion",
    "FieldDraft",
    "IdempotencyRecord",
    "Intake",
    "IntakeMessage",
    "PersonLink",
    "Probe",
    "Region",
    "RegionBoundary",
    "Report",
    "ReportFacet",
    "ReportKey",
    "ReportRef",
    "SignedCheckpoint",
    "SigningKey",
    "StatFact",
    "StatIndicator",
    "StatPerson",
    "StatTally",
    "Subscription",
    "SubscriptionMatch",
    "User",
    "metadata",
]
