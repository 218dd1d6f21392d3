"""What the hub does to protect the people in the reports: the view a reader may have of a
report (redacted, with its links) and rewrapping data keys after a key rotation. Functions
take the session first and never commit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from exchange.agencies.models import Agency, Sensitivity
from exchange.audit import service as audit
from exchange.errors import PermissionDenied
from exchange.i18n import t
from exchange.protection import linking, vault
from exchange.protection.models import ReportKey
from exchange.protection.redaction import reasons, redact
from exchange.protection.sealing import Sealer, sealed_key_id
from exchange.registry.service import SchemaRegistry
from exchange.reports.models import Report
from exchange.routing.models import Subscription, config_purpose

REWRAP_BATCH = 500


@dataclass(frozen=True)
class ReportView:
    """A report's payload as one reader may see it."""

    data: dict[str, Any]
    withheld: list[str]  # JSON pointers removed for the reader's clearance
    earlier_reports: int  # earlier reports the reader may see that name the same person
    # Why each pointer was withheld: "clearance" or "consent" (the person's refusal).
    withheld_because: dict[str, str] = field(default_factory=dict)


def view(
    session: Session,
    *,
    report: Report,
    reader: Agency,
    registry: SchemaRegistry,
    sealer: Sealer,
) -> ReportView:
    """Decrypt, then redact to the reader's clearance. The sender sees what it sent."""
    plaintext = vault.unlock(session, report_id=report.id, ciphertext=report.payload, sealer=sealer)
    return view_of(session, report=report, plaintext=plaintext, reader=reader, registry=registry)


def view_of(
    session: Session,
    *,
    report: Report,
    plaintext: bytes,
    reader: Agency,
    registry: SchemaRegistry,
) -> ReportView:
    """:func:`view` of a payload already decrypted (``vault.unlock``): a report sent to
    several readers at once is decrypted once."""
    payload: dict[str, Any] = json.loads(plaintext)
    withheld: list[str] = []
    because: dict[str, str] = {}
    if reader.id == report.sender:
        data = payload
    else:
        report_type = registry.get(report.type, report.version)
        clearance = reader.clearance_set
        data, withheld = redact(
            payload, report_type=report_type, registry=registry, clearance=clearance
        )
        if withheld:
            because = reasons(
                payload,
                report_type=report_type,
                registry=registry,
                clearance=clearance,
                withheld=withheld,
            )
    return ReportView(
        data=data,
        withheld=withheld,
        withheld_because=because,
        earlier_reports=linking.earlier_reports_seen(session, report=report, reader=reader.id),
    )


def rewrap(session: Session, *, sealer: Sealer, limit: int = REWRAP_BATCH) -> int:
    """Reseal up to ``limit`` data keys, and every subscription config, that the active
    sealing key did not seal. Returns how many were resealed; zero means done."""
    active = sealer.active_key_id
    keys = session.exec(
        select(ReportKey).where(ReportKey.kek_id != active).limit(limit).with_for_update()
    ).all()
    for key in keys:
        purpose = vault.data_key_purpose(key.report_id)
        key.wrapped = sealer.seal(sealer.unseal(key.wrapped, purpose=purpose), purpose=purpose)
        key.kek_id = sealed_key_id(key.wrapped)
        session.add(key)
    configs = 0
    for subscription in session.exec(select(Subscription)).all():
        if sealed_key_id(subscription.config_sealed) == active:
            continue
        purpose = config_purpose(subscription.id)
        subscription.config_sealed = sealer.seal(
            sealer.unseal(subscription.config_sealed, purpose=purpose), purpose=purpose
        )
        session.add(subscription)
        configs += 1
    return len(keys) + configs


def record_rotation(session: Session, *, key_id: str, resealed: int, actor: str) -> None:
    audit.record(
        session,
        action="keys.rotated",
        subject="hub:sealing-key",
        actor=actor,
        details={"key_id": key_id, "resealed": resealed},
    )


class LookupNotCleared(PermissionDenied):
    """Raised when an agency not cleared for identifying data asks who a number belongs
    to: the answer would identify a person its reads are redacted to hide."""

    code = "not_cleared"


def lookup_person(
    session: Session, *, key: bytes, kind: str, value: str, reader: Agency, actor: str
) -> list[Report]:
    """The reports ``reader`` may see that name this NIK or passport number, matched by
    keyed hash; only for an agency cleared for identifying data (a person who did not
    consent is linked to nothing, so no lookup finds them). The audit log records the
    lookup with the digest, never the number: an auditor can tell who asked about the same
    person, and nobody can read who it was."""
    if Sensitivity.identifying not in reader.clearance_set:
        raise LookupNotCleared(t("person.not_cleared"))
    digest = linking.digest(key, kind=kind, value=value)
    found = linking.reports_naming(session, digest_=digest, reader=reader.id)
    audit.record(
        session,
        action="person.lookup",
        subject=f"person:{digest}",
        actor=actor,
        details={"kind": kind, "reports": [report.id for report in found]},
    )
    return found
