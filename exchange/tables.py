"""Every table of the hub, gathered so that migrations and tests see the whole schema."""

from sqlmodel import SQLModel

from exchange.agencies.models import Agency, ApiKey, SigningKey
from exchange.audit.models import AuditEvent, AuditNode, Cosignature, SignedCheckpoint
from exchange.ops.models import Probe
from exchange.regions.models import Region
from exchange.reports.models import IdempotencyRecord, Report

metadata = SQLModel.metadata

__all__ = [
    "Agency",
    "ApiKey",
    "AuditEvent",
    "AuditNode",
    "Cosignature",
    "IdempotencyRecord",
    "Probe",
    "Region",
    "Report",
    "SignedCheckpoint",
    "SigningKey",
    "metadata",
]
