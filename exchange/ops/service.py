"""Worker probes: an operator's way to see that the job path (API -> commit -> broker ->
worker -> database) works end to end, and which worker answered."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from exchange.errors import NotFound
from exchange.i18n import t
from exchange.jobs import enqueue_after_commit
from exchange.models import utcnow
from exchange.ops.models import Probe

PROBE_ACTOR = "ops.probe"


def request_probe(session: Session, *, requested_by: str) -> Probe:
    probe = Probe(id=uuid.uuid4().hex, requested_by=requested_by)
    session.add(probe)
    session.flush()
    enqueue_after_commit(session, PROBE_ACTOR, probe_id=probe.id)
    return probe


def get_probe(session: Session, probe_id: str) -> Probe:
    probe = session.get(Probe, probe_id)
    if probe is None:
        raise NotFound(t("ops.probe_not_found", probe=probe_id))
    return probe


def complete_probe(session: Session, *, probe_id: str, worker: str) -> Probe:
    """Mark the probe answered. A redelivered message finds it answered and changes nothing."""
    probe = get_probe(session, probe_id)
    if probe.completed_at is None:
        probe.completed_at = utcnow()
        probe.completed_by = worker
        session.add(probe)
        session.flush()
    return probe
