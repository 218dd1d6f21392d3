"""Each schema version the hub serves is announced in the audit log with its hash, once, and
again whenever its text changes (an annotation added to a published version), so an auditor
can tell which rules a report was checked against."""

from __future__ import annotations

import hashlib
import json

from sqlmodel import Session, col, select

from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.canonical import canonical_json
from exchange.registry.service import SchemaRegistry


def record_publications(session: Session, *, registry: SchemaRegistry, actor: str) -> list[str]:
    """Record ``schema.published`` for every type version whose text was not announced
    before; return their subjects."""
    announced = {
        (subject, json.loads(canonical)["details"]["sha256"])
        for subject, canonical in session.exec(
            select(AuditEvent.subject, AuditEvent.canonical).where(
                col(AuditEvent.action) == "schema.published"
            )
        )
    }
    published = []
    for name in registry.names():
        for report_type in registry.versions(name):
            subject = f"schema:{report_type.name}/{report_type.version}"
            digest = hashlib.sha256(canonical_json(report_type.schema)).hexdigest()
            if (subject, digest) in announced:
                continue
            audit.record(
                session,
                action="schema.published",
                subject=subject,
                actor=actor,
                details={"uri": report_type.uri, "sha256": digest},
            )
            published.append(subject)
    return published
