"""Which reports an agency may see: the ones it sent and the ones routed to it. Reads,
references, person-link counts and the inbox all use this one rule.

A module of its own beneath the reports service, so that protection (which counts the
earlier reports a reader may see) can use it without climbing above itself."""

from __future__ import annotations

from sqlalchemy import BindParameter, ColumnElement
from sqlmodel import Session, col, exists, select

from exchange.delivery.models import Delivery
from exchange.reports.models import Report


def visible_to(agency_id: str | BindParameter[str]) -> ColumnElement[bool]:
    """The condition on ``report`` rows that ``agency_id`` may see (a bound parameter, for
    a statement built once and run for many readers)."""
    routed = exists().where(
        col(Delivery.report_id) == col(Report.id), col(Delivery.agency_id) == agency_id
    )
    return (col(Report.sender) == agency_id) | routed


def may_see(session: Session, *, report_id: str, agency_id: str) -> bool:
    query = select(Report.id).where(Report.id == report_id, visible_to(agency_id))
    return session.exec(query).first() is not None
