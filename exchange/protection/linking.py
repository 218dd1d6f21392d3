"""Linking without revealing: each NIK and passport number in a report is stored only as
HMAC-SHA256 under the hub's linking key. Equal numbers give equal digests, so the hub can
tell a recipient "this person appeared in N earlier reports you may see" — an early-warning
signal across agencies — while neither the database nor any agency holds the number."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import BindParameter, bindparam, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, delete, select
from sqlmodel.sql.expression import SelectOfScalar

from exchange.models import insert_rows
from exchange.protection.models import PersonLink
from exchange.registry.service import ReportType, SchemaRegistry, values_at
from exchange.reports.models import Report
from exchange.reports.visibility import visible_to

EARLIER_REPORTS_CAP = 100


def digest(key: bytes, *, kind: str, value: str) -> str:
    normalised = "".join(value.split()).upper()
    return hmac.new(key, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


def record_links(
    session: Session,
    *,
    report_id: str,
    payload: dict[str, Any],
    report_type: ReportType,
    registry: SchemaRegistry,
    key: bytes,
) -> int:
    """Store the digests of the report's identifiers; returns how many. A person who has
    not consented to sharing their data (the type's ``x-consent`` is false) is linked to
    nothing: linking is identification, and no recipient may identify them."""
    consent = report_type.consent_path
    if consent is not None and any(v is False for _, v in values_at(payload, consent)):
        return 0
    digests = {
        digest(key, kind=kind, value=value)
        for pattern, kind in registry.link_paths(report_type)
        for _, value in values_at(payload, pattern)
        if isinstance(value, str) and value.strip()
    }
    insert_rows(
        session, PersonLink, [{"report_id": report_id, "digest": d} for d in sorted(digests)]
    )
    return len(digests)


def _earlier_reports() -> SelectOfScalar[int]:
    """The count :func:`earlier_reports_seen` runs: one statement, built once, its report,
    time and reader bound at each run. Built afresh each time it cost ten times what the
    database does with it (SQLAlchemy's construction and cache-key work), and a delivery
    runs it for each recipient while it holds the write lock."""
    own = aliased(PersonLink)
    report_id: BindParameter[str] = bindparam("report_id")
    earlier = (
        select(PersonLink.report_id)
        .join(Report, col(Report.id) == col(PersonLink.report_id))
        .where(
            col(PersonLink.digest).in_(select(own.digest).where(own.report_id == report_id)),
            col(PersonLink.report_id) != report_id,
            col(Report.received_at) < bindparam("received_at"),
            col(Report.purged_at).is_(None),
            visible_to(bindparam("reader")),
        )
        .distinct()
        .limit(EARLIER_REPORTS_CAP)
        .subquery()
    )
    return select(func.count()).select_from(earlier)


_EARLIER_REPORTS = _earlier_reports()


def earlier_reports_seen(session: Session, *, report: Report, reader: str) -> int:
    """How many earlier, unpurged reports that ``reader`` may see (it sent them, or they
    were routed to it) name a person this report names, counted up to
    :data:`EARLIER_REPORTS_CAP` (a person in that many reports needs no exact figure, and
    every read stays cheap however often a person recurs)."""
    parameters = {"report_id": report.id, "received_at": report.received_at, "reader": reader}
    return int(session.execute(_EARLIER_REPORTS, parameters).scalar_one())


def forget(session: Session, *, report_id: str) -> None:
    """Delete a report's person links: a purged report is linked to no one."""
    session.exec(delete(PersonLink).where(col(PersonLink.report_id) == report_id))


LOOKUP_LIMIT = 100


def reports_naming(session: Session, *, digest_: str, reader: str) -> list[Report]:
    """The unpurged reports ``reader`` may see that hold an identifier with this digest,
    newest first, at most :data:`LOOKUP_LIMIT`."""
    return list(
        session.exec(
            select(Report)
            .join(PersonLink, col(PersonLink.report_id) == col(Report.id))
            .where(
                PersonLink.digest == digest_,
                col(Report.purged_at).is_(None),
                visible_to(reader),
            )
            .order_by(col(Report.received_at).desc(), col(Report.id).desc())
            .limit(LOOKUP_LIMIT)
        )
    )
