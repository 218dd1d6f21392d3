"""The envelope: a CloudEvents 1.0 event in structured JSON mode, built with the
``cloudevents`` package, one per delivery (its id is the delivery's id)."""

from __future__ import annotations

import hashlib
from typing import Any

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

from connectors.base import Envelope
from exchange.canonical import canonical_json
from exchange.delivery.models import Delivery
from exchange.models import utcnow
from exchange.protection.service import ReportView
from exchange.registry.service import SchemaRegistry
from exchange.reports.models import Report

EVENT_TYPE_PREFIX = "exchange.report."
TEST_EVENT_TYPE = "exchange.test.v1"


def event_type(report: Report) -> str:
    return f"{EVENT_TYPE_PREFIX}{report.type}.v{report.version}"


def data_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the RFC 8785 form of the data as this recipient receives it: what a signed
    receipt signs, and what the audit log records as delivered."""
    return hashlib.sha256(canonical_json(data)).hexdigest()


def build_envelope(
    report: Report, delivery: Delivery, *, registry: SchemaRegistry, seen: ReportView
) -> Envelope:
    """The envelope of one delivery, its data as the recipient may see it (``seen``)."""
    data = seen.data
    attributes: dict[str, Any] = {
        "id": delivery.id,
        "source": f"/agencies/{report.sender}",
        "type": event_type(report),
        "time": report.received_at,
        "subject": report.id,
        "dataschema": registry.get(report.type, report.version).uri,
        "datacontenttype": "application/json",
        "tlp": report.tlp,
        "recipient": delivery.agency_id,  # whom this copy is for, redacted to its clearance
        "datahash": data_hash(data),
    }
    if report.region:
        attributes["region"] = report.region
    if report.severity:
        attributes["severity"] = report.severity
    if seen.withheld:  # CloudEvents extension values are strings: the pointers, space-separated
        attributes["withheld"] = " ".join(seen.withheld)
    if seen.earlier_reports:
        attributes["earlierreports"] = seen.earlier_reports
    message = to_structured_event(CloudEvent(attributes, data))
    return Envelope(id=delivery.id, attributes=attributes, body=message.body)


def build_test_envelope(subscription_id: str, agency_id: str, *, envelope_id: str) -> Envelope:
    """A test envelope for a subscription: the same shape, signature and headers as a
    report's, carrying no report, so that an agency can check its endpoint end to end."""
    data = {"test": True, "subscription": subscription_id}
    attributes: dict[str, Any] = {
        "id": envelope_id,
        "source": "/hub",
        "type": TEST_EVENT_TYPE,
        "time": utcnow(),
        "subject": subscription_id,
        "datacontenttype": "application/json",
        "tlp": "CLEAR",
        "recipient": agency_id,
        "datahash": data_hash(data),
    }
    message = to_structured_event(CloudEvent(attributes, data))
    return Envelope(id=envelope_id, attributes=attributes, body=message.body)
