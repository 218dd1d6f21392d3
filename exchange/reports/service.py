"""Accepting reports: validation against the shared schemas and the region directory,
sender signatures, idempotency, and the audit trail of every acceptance and rejection.
Functions take the session first and never commit."""

from __future__ import annotations

import binascii
import hashlib
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, delete, exists, select

from exchange.agencies import signatures
from exchange.agencies.models import Agency, AgencyKind
from exchange.agencies.service import Principal
from exchange.audit import service as audit
from exchange.audit.failures import RejectionTally
from exchange.canonical import canonical_json
from exchange.crypto import b64url_decode
from exchange.delivery.models import Delivery, end_due_deliveries
from exchange.errors import (
    AuthenticationFailed,
    Conflict,
    ErrorDetail,
    ExchangeError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from exchange.i18n import SUPPORTED_LOCALES, Locale, t
from exchange.keyring import Keyring
from exchange.models import (
    READS,
    advisory_key,
    held_rows_of,
    hold_advisory_lock,
    insert_rows,
    utcnow,
)
from exchange.protection import linking, vault
from exchange.protection.models import ReportKey
from exchange.ratelimit import KeyRateLimit
from exchange.regions import service as regions
from exchange.registry.service import TLP_MARKINGS, ReportType, SchemaRegistry, values_at
from exchange.reports.contracts import ReportSubmission, SubmissionResult, Warning_
from exchange.reports.models import IdempotencyRecord, Report, ReportFacet, ReportRef
from exchange.reports.visibility import may_see, visible_to
from exchange.routing import service as routing
from exchange.routing.contracts import SEVERITY_ORDER
from exchange.routing.service import RoutingFacts
from exchange.statistics import facts as statistics

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# How far ahead of the hub's clock an observation time may be: officers' phones drift.
CLOCK_SKEW = timedelta(minutes=10)
EARLIEST_ZONE = timezone(timedelta(hours=14))  # where a calendar day begins first
BROADCAST = frozenset({"CLEAR", "GREEN"})  # markings that reach every subscriber
PAYLOAD_POINTER = "/payload"


class SignatureInvalid(AuthenticationFailed):
    """Raised when an Exchange-Signature is missing where required, malformed or wrong."""

    code = "signature_invalid"


class IdempotencyConflict(Conflict):
    """Raised when an Idempotency-Key is reused with a different body."""

    code = "idempotency_conflict"


class ReportNotFound(NotFound):
    """Raised when a report id names no report the caller may see."""

    code = "report_not_found"


def canonical_hash(document: Any) -> tuple[bytes, str]:
    canonical = canonical_json(document)
    return canonical, hashlib.sha256(canonical).hexdigest()


def parse_signature_header(header: str) -> tuple[str, bytes]:
    """``keyid="<JWK thumbprint>", sig="<base64url Ed25519 signature>"``."""
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields[name.strip().lower()] = value.strip().strip('"')
    try:
        signature = b64url_decode(fields["sig"])
        key_id = fields["keyid"]
    except (KeyError, binascii.Error, ValueError):
        raise SignatureInvalid(t("report.signature_malformed")) from None
    if not key_id or len(signature) != 64:
        raise SignatureInvalid(t("report.signature_malformed"))
    return key_id, signature


def _verify_signature(
    session: Session, *, agency_id: str, header: str | None, canonical: bytes, required: bool
) -> str | None:
    if header is None:
        if required:
            raise SignatureInvalid(t("report.signature_required", agency=agency_id))
        return None
    key_id, signature = parse_signature_header(header)
    try:
        signatures.verify(
            session, agency_id=agency_id, key_id=key_id, signature=signature, message=canonical
        )
    except signatures.UnknownSigningKey:
        raise SignatureInvalid(t("report.signature_unknown_key", key=key_id)) from None
    except signatures.WrongSignature:
        raise SignatureInvalid(t("report.signature_wrong")) from None
    return key_id


def _schema_violations(
    registry: SchemaRegistry, report_type: ReportType, payload: dict[str, Any]
) -> list[ErrorDetail]:
    return [
        ErrorDetail(
            registry.explain(report_type, v),
            pointer=PAYLOAD_POINTER + v.pointer,
            extra={
                "type": v.keyword,
                "schema_path": v.schema_path,
                # A missing field is reported at its object; its name says where it goes.
                **({"property": v.params["property"]} if v.keyword == "required" else {}),
            },
        )
        for v in report_type.violations(payload)
    ]


def submit(
    session: Session,
    *,
    sender: Agency,
    principal: Principal,
    registry: SchemaRegistry,
    keyring: Keyring,
    submission: ReportSubmission,
    signature_header: str | None,
    locale: Locale = "en",
) -> SubmissionResult:
    """Validate and store one report, recording ``report.submitted``, and route it; raise
    on any rule broken (the caller records the rejection). Every check, routing's included,
    is made before anything is written. ``sender`` is the principal's agency, loaded once by
    the caller (a bulk submission has thousands of lines and one sender)."""
    report_type = registry.get(submission.type, submission.version)
    if sender.kind not in report_type.submitters:
        raise PermissionDenied(
            t(
                "report.type_forbidden",
                kind=sender.kind,
                type=report_type.name,
                allowed=", ".join(sorted(report_type.submitters)),
            )
        )
    details = _schema_violations(registry, report_type, submission.payload)
    if details:
        raise InvalidInput(t("report.invalid", count=len(details)), details=details)
    payload, normalised = registry.normalised(report_type, submission.payload)
    located = [
        (pointer, value)
        for pattern in report_type.region_code_paths
        for pointer, value in values_at(payload, pattern)
        if isinstance(value, str)
    ]
    details = [
        *regions.unknown_code_details(session, located, prefix=PAYLOAD_POINTER),
        *_future_times(report_type, payload, now=utcnow()),
    ]
    references = [(f"/refs/{i}", ref) for i, ref in enumerate(submission.refs)] + [
        (PAYLOAD_POINTER + pointer, value)
        for pattern in report_type.report_ref_paths
        for pointer, value in values_at(payload, pattern)
        if isinstance(value, str)
    ]
    referenced = _visible_markings(session, [ref for _, ref in references], reader=sender.id)
    named = [(f"/recipients/{i}", agency) for i, agency in enumerate(submission.recipients)] + [
        (PAYLOAD_POINTER + pointer, value)
        for pattern in report_type.recipient_paths
        for pointer, value in values_at(payload, pattern)
        if isinstance(value, str)
    ]
    unknown = [
        *_missing(references, referenced, message="report.unknown_ref"),
        *_missing(
            named,
            _nameable_agencies(session, [agency for _, agency in named]),
            message="report.unknown_recipient",
        ),
    ]
    if details or unknown:
        raise InvalidInput(
            t("report.invalid", count=len(details) + len(unknown)), details=[*details, *unknown]
        )

    canonical, payload_hash = canonical_hash(payload)
    # The sender signed what it sent; the hub stores it normalised (and says where).
    submitted, submitted_hash = (
        canonical_hash(submission.payload) if normalised else (canonical, payload_hash)
    )
    key_id = _verify_signature(
        session,
        agency_id=sender.id,
        header=signature_header,
        canonical=submitted,
        required=sender.require_signed_reports,
    )
    warnings = [
        Warning_(
            code="nik_district_unknown",
            pointer=PAYLOAD_POINTER + pointer,
            message=t("regions.nik_district_unknown", district=district).render(locale),
        )
        for pointer, district in _unknown_nik_districts(session, report_type, payload)
    ] + _outside_jurisdiction(report_type, payload, sender=sender, locale=locale)
    consent = report_type.consent_path
    warnings += [
        Warning_(
            code="shared_without_consent",
            pointer=PAYLOAD_POINTER + pointer,
            message=t("report.without_consent").render(locale),
        )
        for pointer, value in (values_at(payload, consent) if consent else ())
        if value is False
    ]
    warnings += [
        Warning_(
            code="normalised",
            pointer=PAYLOAD_POINTER + pointer,
            message=t("report.phone_normalised").render(locale),
        )
        for pointer in normalised
    ]
    asked = submission.tlp or report_type.default_tlp
    tlp = strictest([asked, *referenced.values()])
    if tlp != asked:
        warnings.append(
            Warning_(
                code="tlp_raised",
                pointer="/tlp",
                message=t("report.tlp_raised", asked=asked, tlp=tlp).render(locale),
            )
        )
    recipients = sorted({agency for _, agency in named})
    facts = RoutingFacts.of(
        report_type,
        payload,
        tlp=tlp,
        sender=sender.id,
        recipients=recipients,
        participants=_participants(session, sorted(referenced)),
        regions=[district for _, district in _nik_districts(report_type, payload)],
    )
    destinations = routing.plan(session, facts)
    if not destinations.targets:
        if not submission.allow_no_recipient:
            raise _no_recipient(tlp, destinations.withheld)
        warnings.append(
            Warning_(
                code="no_recipient",
                pointer="/allow_no_recipient",
                message=t("report.no_recipient_kept").render(locale),
            )
        )

    report_id, received_at = uuid.uuid4().hex, utcnow()
    ciphertext, data_key = vault.lock(
        report_id=report_id, canonical=canonical, sealer=keyring.sealer
    )
    report = {
        "id": report_id,
        "type": report_type.name,
        "version": report_type.version,
        "sender": sender.id,
        "tlp": tlp,
        "refs": json.dumps(submission.refs),
        "recipients": json.dumps(recipients),
        "payload": ciphertext,
        "payload_hash": payload_hash,
        "region": facts.regions[0] if facts.regions else None,
        "severity": facts.severity,
        "signature_key_id": key_id,
        "received_at": received_at,
        "purged_at": None,
    }
    # Plain rows, not ORM objects: they are never changed in this unit of work, and the
    # unit of work's bookkeeping cost several times the inserts (exchange.models.insert_rows).
    insert_rows(session, Report, [report])
    event_id = audit.record(
        session,
        action="report.submitted",
        subject=f"report:{report_id}",
        actor=principal.actor,
        details={
            "type": report_type.name,
            "version": report_type.version,
            "tlp": tlp,
            "payload_hash": payload_hash,
            **({"submitted_hash": submitted_hash} if normalised else {}),
            "signature_key_id": key_id,
            "refs": submission.refs,
            "recipients": recipients,
        },
    )
    insert_rows(session, ReportKey, [data_key])
    place = [
        code
        for pattern in report_type.routing.get("region", ())[:1]
        for _, code in values_at(payload, pattern)
        if isinstance(code, str)
    ]
    facets = [
        *(("place", code) for code in sorted(set(place))),
        *(("region", code) for code in facts.regions),
        *(("indicator", indicator) for indicator in sorted(facts.indicators)),
    ]
    insert_rows(
        session,
        ReportFacet,
        [{"report_id": report_id, "facet": facet, "value": value} for facet, value in facets],
    )
    insert_rows(
        session,
        ReportRef,
        [{"report_id": report_id, "refers_to": ref} for ref in sorted(referenced)],
    )
    statistics.record(
        session,
        report_id=report_id,
        report_type=report_type,
        payload=payload,
        received_at=received_at,
        severity=facts.severity,
        indicators=facts.indicators,
        sender=sender.id,
    )
    linking.record_links(
        session,
        report_id=report_id,
        payload=payload,
        report_type=report_type,
        registry=registry,
        key=keyring.linking_key,
    )
    routing.route(session, report_id=report_id, plan=destinations, actor=principal.actor)
    return SubmissionResult(
        id=report_id,
        type=report_type.name,
        version=report_type.version,
        tlp=tlp,
        payload_hash=payload_hash,
        received_at=received_at,
        audit_event_id=event_id,
        recipients=recipients,
        routed_to=destinations.routed_to,
        withheld_by_tlp=sorted(destinations.withheld),
        warnings=warnings,
    )


class NoRecipient(InvalidInput):
    """Raised when a report would reach no agency but its sender, and the sender did not
    say that this is what it wants."""

    code = "no_recipient"


def _no_recipient(tlp: str, withheld: Collection[str]) -> NoRecipient:
    if withheld:
        message = t("report.no_recipient_tlp", tlp=tlp, withheld=", ".join(sorted(withheld)))
        pointer = "/tlp"
    else:
        message = t("report.no_recipient")
        pointer = "/recipients"
    # Both languages in the detail: the officer who reads it may not be the one whose
    # client chose the language, and this refusal must be understood.
    both = {locale: message.render(locale) for locale in SUPPORTED_LOCALES}
    return NoRecipient(
        message, details=[ErrorDetail(message, pointer=pointer, extra={"messages": both})]
    )


def _participants(session: Session, referenced: list[str]) -> set[str]:
    """The agencies of the case a report continues: the sender and the named recipients of
    each report it refers to, and the agencies that received one marked AMBER or stricter
    (they were told on a need-to-know basis). Not everyone a GREEN or CLEAR broadcast
    reached: subscribing to everything, or backfilling it, must not make an agency a
    party to every case that follows."""
    if not referenced:
        return set()
    found: set[str] = set()
    need_to_know: list[str] = []
    rows = session.exec(
        select(Report.id, Report.sender, Report.recipients, Report.tlp).where(
            col(Report.id).in_(referenced)
        )
    )
    for report_id, sender, recipients, tlp in rows:
        found.add(sender)
        found.update(json.loads(recipients))
        if tlp not in BROADCAST:
            need_to_know.append(report_id)
    if need_to_know:
        found.update(
            session.exec(
                select(Delivery.agency_id)
                .where(col(Delivery.report_id).in_(need_to_know))
                .distinct()
            )
        )
    return found


def _future_times(
    report_type: ReportType, payload: dict[str, Any], *, now: datetime
) -> list[ErrorDetail]:
    """A detail for each observation time more than :data:`CLOCK_SKEW` ahead of ``now``. A
    bare date is in the future once it has begun nowhere on Earth (UTC+14)."""
    found = []
    for pattern in report_type.not_future_paths:
        for pointer, value in values_at(payload, pattern):
            moment = _moment(value) if isinstance(value, str) else None
            if moment is not None and moment > now + CLOCK_SKEW:
                found.append(
                    ErrorDetail(
                        t("report.future_time", value=value, now=now.isoformat(timespec="seconds")),
                        pointer=PAYLOAD_POINTER + pointer,
                    )
                )
    return found


def _moment(value: str) -> datetime | None:
    """The instant an RFC 3339 date-time or a date names. The schema has already checked the
    form; RFC 3339 allows what Python's parser does not (a lower-case ``t`` or ``z``, a leap
    second), so those are put in its terms first, a leap second counted as the second
    before it."""
    text = value.upper()
    if len(text) > 19 and text[17:19] == "60":
        text = text[:17] + "59" + text[19:]
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=EARLIEST_ZONE) if moment.tzinfo is None else moment
    except (ValueError, OverflowError):
        return None


def _outside_jurisdiction(
    report_type: ReportType, payload: dict[str, Any], *, sender: Agency, locale: Locale
) -> list[Warning_]:
    """A warning for each place the report is about (the first ``x-routing`` region
    pointer: the village, the office, the checkpoint) outside the sender's jurisdiction: a
    village officer reporting another village's code has more often mistyped it."""
    where = report_type.routing.get("region", ())[:1]
    return [
        Warning_(
            code="outside_jurisdiction",
            pointer=PAYLOAD_POINTER + pointer,
            message=t(
                "report.outside_jurisdiction", code=code, jurisdiction=sender.jurisdiction
            ).render(locale),
        )
        for pattern in where
        for pointer, code in values_at(payload, pattern)
        if isinstance(code, str) and not routing.overlaps(sender.jurisdiction, code)
    ]


def _missing(
    located: list[tuple[str, str]], known: Collection[str], *, message: str
) -> list[ErrorDetail]:
    """A detail for each (pointer, id) whose id names nothing the sender may name."""
    return [
        ErrorDetail(t(message, id=value), pointer=pointer)
        for pointer, value in located
        if value not in known
    ]


def strictest(markings: list[str]) -> str:
    """The strictest TLP marking of several: when reports are combined, it wins."""
    return max(markings, key=TLP_MARKINGS.index)


def _visible_markings(session: Session, ids: list[str], *, reader: str) -> dict[str, str]:
    """The TLP marking of each referenced report the sender may see. One it may not see is
    left out, exactly like one that does not exist: a reference must not tell a sender that
    a report exists, nor how it is marked."""
    if not ids:
        return {}
    rows = session.exec(
        select(Report.id, Report.tlp).where(col(Report.id).in_(ids), visible_to(reader))
    )
    return dict(rows.all())


def _nameable_agencies(session: Session, ids: list[str]) -> set[str]:
    """Agencies a report may name as recipients: active participants, not the operator.
    Any other id is answered like one that names nothing."""
    if not ids:
        return set()
    return set(
        session.exec(
            select(Agency.id).where(
                col(Agency.id).in_(ids),
                col(Agency.active).is_(True),
                Agency.kind != AgencyKind.operator,
            )
        )
    )


def _nik_districts(report_type: ReportType, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(pointer, district) of each NIK in the report: the first six digits of a NIK are the
    district where it was issued, a region the report concerns."""
    return [
        (pointer, regions.nik_district(value))
        for pattern in report_type.nik_paths
        for pointer, value in values_at(payload, pattern)
        if isinstance(value, str) and len(value) == 16
    ]


def _unknown_nik_districts(
    session: Session, report_type: ReportType, payload: dict[str, Any]
) -> list[tuple[str, str]]:
    located = _nik_districts(report_type, payload)
    if not located or not regions.is_loaded(session):
        return []
    known = regions.known_codes(session, {district for _, district in located})
    return [(pointer, district) for pointer, district in located if district not in known]


def tally_rejection(
    rejections: RejectionTally,
    *,
    principal: Principal,
    submission_type: str | None,
    error: ExchangeError,
) -> None:
    """Count a refused submission; the audit log gets one event per submitter and distinct
    error each minute (:mod:`exchange.audit.failures`)."""
    rejections.add(
        agency_id=principal.agency_id,
        actor=principal.actor,
        report_type=submission_type,
        code=error.code,
        status=error.status,
        pointers=tuple(d.pointer for d in error.details),
    )


# --- idempotency ---------------------------------------------------------------------------


def idempotency_lock(agency_id: str, key: str) -> int:
    """The advisory lock key under which requests with one key take turns."""
    return advisory_key("idempotency", f"{agency_id}:{key}")


def take_turn(session: Session, *, agency_id: str, key: str) -> bool:
    """Hold ``key`` until this transaction ends, so that requests with one key, from any
    process, take turns from the lookup of a stored answer to the commit of a new one and
    the second finds the first's answer. On PostgreSQL an advisory lock (transactions of
    other API processes run side by side): True, the caller looks again, since another may
    have committed while this one waited. SQLite's one writer at a time already does it:
    False. Taken only when no answer was found, so that replays of a committed answer
    (clients resending after a timeout) wait for no one and hold nothing: two groups
    replaying one key and storing another in opposite orders would otherwise deadlock."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    hold_advisory_lock(session, idempotency_lock(agency_id, key))
    return True


def answered(session: Session, *, agency_id: str, key: str) -> IdempotencyRecord | None:
    """The first answer given under this key, while it is kept (24 hours): one stored
    earlier in this transaction (held, another submission of the group) or before it."""
    for row in held_rows_of(session, IdempotencyRecord):
        if row["agency_id"] == agency_id and row["key"] == key:
            return IdempotencyRecord.model_validate(row)
    # The held rows were just looked at: the read need not write them first.
    record = session.get(
        IdempotencyRecord, (agency_id, key), execution_options={READS: frozenset()}
    )
    if record is None:
        return None
    if record.created_at < utcnow() - IDEMPOTENCY_WINDOW:
        session.delete(record)
        session.flush()
        return None
    return record


def replayed(
    session: Session, *, agency_id: str, key: str, request_hash: str
) -> dict[str, Any] | None:
    """The stored answer for this key, if any; a conflict if the body differs."""
    record = answered(session, agency_id=agency_id, key=key)
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyConflict(t("report.idempotency_conflict", key=key))
    stored: dict[str, Any] = json.loads(record.response)
    return stored


def remember(
    session: Session, *, agency_id: str, key: str, request_hash: str, response: dict[str, Any]
) -> None:
    """Store the answer to replay (a plain row, held with the submission's own: the caller
    took its turn with the key first, so no other transaction can store one meanwhile)."""
    insert_rows(
        session,
        IdempotencyRecord,
        [
            {
                "agency_id": agency_id,
                "key": key,
                "request_hash": request_hash,
                "response": json.dumps(response),
                "created_at": utcnow(),
            }
        ],
    )


# --- one submission, start to finish ------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: int
    document: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def refused(cls, error: ExchangeError, locale: Locale) -> Outcome:
        """The answer a client sees for ``error``: its JSON body and its headers."""
        return cls(
            error.status,
            error.body(locale),
            headers={**error.headers, "Content-Language": locale},
        )


def accept(
    session: Session,
    *,
    sender: Agency,
    principal: Principal,
    registry: SchemaRegistry,
    keyring: Keyring,
    submission: ReportSubmission,
    idempotency_key: str | None,
    signature_header: str | None,
    submissions: KeyRateLimit,
    rejections: RejectionTally,
    locale: Locale,
) -> Outcome:
    """Idempotency, validation and storage of one submission, as one outcome: 202 with the
    result, or the error a client sees. Each counts against the key's ``submissions`` a
    minute. A rejected report leaves nothing behind but its count in the
    ``report.rejected`` summary."""
    request_hash = canonical_hash(submission.model_dump(mode="json"))[1] if idempotency_key else ""
    agency_id = principal.agency_id
    try:
        submissions.admit(principal.key_id)
        if idempotency_key:
            stored = replayed(
                session, agency_id=agency_id, key=idempotency_key, request_hash=request_hash
            )
            if stored is None and take_turn(session, agency_id=agency_id, key=idempotency_key):
                stored = replayed(
                    session, agency_id=agency_id, key=idempotency_key, request_hash=request_hash
                )
            if stored is not None:
                return Outcome(202, stored, replayed=True)
        # submit() checks everything before it writes anything: a refusal leaves nothing.
        result = submit(
            session,
            sender=sender,
            principal=principal,
            registry=registry,
            keyring=keyring,
            submission=submission,
            signature_header=signature_header,
            locale=locale,
        )
        document: dict[str, Any] = result.model_dump(mode="json")
        if idempotency_key:
            remember(
                session,
                agency_id=agency_id,
                key=idempotency_key,
                request_hash=request_hash,
                response=document,
            )
    except ExchangeError as error:
        tally_rejection(
            rejections, principal=principal, submission_type=submission.type, error=error
        )
        return Outcome.refused(error, locale)
    return Outcome(202, document)


# --- reading ---------------------------------------------------------------------------------


def read(session: Session, *, principal: Principal, report_id: str) -> Report:
    """A report its reader may see: its sender, or an agency it was routed to. Anything
    else is "not found", never "forbidden", so ids reveal nothing."""
    report = session.get(Report, report_id)
    if report is None or not (may_see(session, report_id=report.id, agency_id=principal.agency_id)):
        raise ReportNotFound(t("report.not_found", report=report_id))
    record_read(session, report_id=report.id, actor=principal.actor, via="GET /v1/reports/{id}")
    return report


def record_read(session: Session, *, report_id: str, actor: str, via: str) -> None:
    """The audit event of one report read, and the way it was read."""
    audit.record(
        session,
        action="report.read",
        subject=f"report:{report_id}",
        actor=actor,
        details={"via": via},
    )


# --- purging ---------------------------------------------------------------------------------


def purge(session: Session, *, report_id: str, actor: str, reason: str) -> Report:
    """Destroy a report's data key and ciphertext. Its metadata (type, sender, region,
    severity, marking, times, hash) stays for statistics; its audit events, which hold only
    hashes, stay and still verify; deliveries still due end as dead."""
    report = session.get(Report, report_id)
    if report is None:
        raise ReportNotFound(t("report.not_found", report=report_id))
    if report.purged_at is not None:
        return report
    vault.destroy(session, report_id=report_id)
    linking.forget(session, report_id=report_id)
    session.exec(delete(ReportFacet).where(col(ReportFacet.report_id) == report_id))
    report.payload = b""
    report.purged_at = utcnow()
    session.add(report)
    ended = end_due_deliveries(session, reason="report purged", report_id=report_id)
    audit.record(
        session,
        action="report.purged",
        subject=f"report:{report_id}",
        actor=actor,
        details={
            "reason": reason,
            "payload_hash": report.payload_hash,
            "ended_deliveries": ended,
        },
    )
    return report


def expired(session: Session, *, registry: SchemaRegistry, now: datetime) -> list[str]:
    """Ids of unpurged reports older than their type's retention (``x-retention-days``)."""
    due: list[str] = []
    for report_type in registry.latest():
        cutoff = now - timedelta(days=report_type.retention_days)
        due.extend(
            session.exec(
                select(Report.id).where(
                    Report.type == report_type.name,
                    col(Report.purged_at).is_(None),
                    col(Report.received_at) < cutoff,
                )
            ).all()
        )
    return due


# --- the sender's view, threads and search --------------------------------------------------


def sent_deliveries(session: Session, *, principal: Principal, report_id: str) -> list[Delivery]:
    """Where a report went, for its sender: one row per delivery. Anyone else is answered
    "not found", whether or not the report exists."""
    report = session.get(Report, report_id)
    if report is None or report.sender != principal.agency_id:
        raise ReportNotFound(t("report.not_found", report=report_id))
    return list(
        session.exec(
            select(Delivery)
            .where(Delivery.report_id == report_id)
            .order_by(col(Delivery.agency_id), col(Delivery.created_at))
        )
    )


THREAD_LIMIT = 500  # reports in one thread answer; a case with more is read by search


def thread(
    session: Session, *, principal: Principal, report_id: str
) -> tuple[list[Report], dict[str, list[str]]]:
    """The case a report belongs to, as far as the reader may see it: every report linked
    to it by references, followed both ways, oldest first. The walk goes only through
    reports the reader may see, so it tells nothing of the others, not even that they
    exist. Returns the reports and, for each, the reports of the thread it refers to."""
    reader = principal.agency_id
    if not may_see(session, report_id=report_id, agency_id=reader):
        raise ReportNotFound(t("report.not_found", report=report_id))
    found: set[str] = {report_id}
    frontier = {report_id}
    links: set[tuple[str, str]] = set()
    while frontier and len(found) < THREAD_LIMIT:
        links.update(
            session.exec(
                select(ReportRef.report_id, ReportRef.refers_to).where(
                    col(ReportRef.report_id).in_(frontier) | col(ReportRef.refers_to).in_(frontier)
                )
            ).all()
        )
        linked = {id_ for link in links for id_ in link} - found
        visible = set(
            session.exec(select(Report.id).where(col(Report.id).in_(linked), visible_to(reader)))
        )
        frontier = set(sorted(visible)[: THREAD_LIMIT - len(found)])
        found |= frontier
    reports = list(
        session.exec(
            select(Report)
            .where(col(Report.id).in_(found))
            .order_by(col(Report.received_at), col(Report.id))
        )
    )
    audit.record(
        session,
        action="report.thread_read",
        subject=f"report:{report_id}",
        actor=principal.actor,
        details={"reports": [r.id for r in reports]},
    )
    refers: dict[str, list[str]] = {report.id: [] for report in reports}
    for source, target in sorted(links):
        if source in found and target in found:
            refers[source].append(target)
    return reports, refers


@dataclass(frozen=True)
class Search:
    """What ``GET /v1/reports`` selects by; every filter is optional."""

    types: tuple[str, ...] = ()
    # A region-code prefix, matched against the place a report is about (the village, the
    # office, the checkpoint): not against a person's home or a NIK's district, which
    # routing uses but a reader may not be cleared to see.
    region: str | None = None
    min_severity: str | None = None
    indicator: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    purged: bool = False  # live reports, or only the purged ones


def matching(query: Search) -> list[ColumnElement[bool]]:
    """The conditions on ``Report`` that a search's filters make: the search API's, and the
    console desk's over what was routed to the agency."""
    conditions: list[ColumnElement[bool]] = []
    if query.types:
        conditions.append(col(Report.type).in_(query.types))
    if query.min_severity is not None:
        allowed = [
            s for s, rank in SEVERITY_ORDER.items() if rank >= SEVERITY_ORDER[query.min_severity]
        ]
        conditions.append(col(Report.severity).in_(allowed))
    if query.region is not None:
        value = col(ReportFacet.value)
        conditions.append(
            exists().where(
                col(ReportFacet.report_id) == col(Report.id),
                col(ReportFacet.facet) == "place",
                (value == query.region)
                | ((value > query.region + ".") & (value < query.region + "/")),
            )
        )
    if query.indicator is not None:
        conditions.append(
            exists().where(
                col(ReportFacet.report_id) == col(Report.id),
                col(ReportFacet.facet) == "indicator",
                col(ReportFacet.value) == query.indicator,
            )
        )
    if query.since is not None:
        conditions.append(col(Report.received_at) >= query.since)
    if query.until is not None:
        conditions.append(col(Report.received_at) < query.until)
    return conditions


def search(
    session: Session,
    *,
    principal: Principal,
    query: Search,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Report]:
    """The reports the reader may see (it sent them, or they were routed to it) that match
    every filter, newest first, ``limit`` from ``after``. Each is recorded in the audit log
    as read by the caller: a search reads the payloads it returns."""
    statement = select(Report).where(visible_to(principal.agency_id))
    statement = statement.where(
        col(Report.purged_at).is_not(None) if query.purged else col(Report.purged_at).is_(None)
    )
    statement = statement.where(*matching(query))
    if after is not None:
        moment, last_id = after
        statement = statement.where(
            (col(Report.received_at) < moment)
            | ((col(Report.received_at) == moment) & (col(Report.id) < last_id))
        )
    reports = list(
        session.exec(
            statement.order_by(col(Report.received_at).desc(), col(Report.id).desc()).limit(limit)
        )
    )
    for report in reports:
        record_read(session, report_id=report.id, actor=principal.actor, via="GET /v1/reports")
    return reports
