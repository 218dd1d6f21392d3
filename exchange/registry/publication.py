"""Each schema version the hub serves is announced once in the audit log, with its hash, so
an auditor can tell which rules a report was checked against."""

from __future__ import annotations

import hashlib

import rfc8785
from sqlmodel import Session, col, select

from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.registry.service import SchemaRegistry


def record_publications(session: Session, *, registry: SchemaRegistry, actor: str) -> list[str]:
    """Record ``schema.published`` for every type version not announced before; return them."""
    announced = set(
        session.exec(select(AuditEvent.subject).where(col(AuditEvent.action) == "schema.published"))
    )
    published = []
    for name in registry.names():
        for report_type in registry.versions(name):
            subject = f"schema:{report_type.name}/{report_type.version}"
            if subject in announced:
                continue
            audit.record(
                session,
                action="schema.published",
                subject=subject,
                actor=actor,
                details={
                    "uri": report_type.uri,
                    "sha256": hashlib.sha256(rfc8785.dumps(report_type.schema)).hexdigest(),
                },
            )
            published.append(subject)
    return published
