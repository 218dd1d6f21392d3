"""Intakes and drafts: registering a channel for an agency, turning the messages it brings
into submissions on behalf of the users who sent them (or into drafts to complete in the
console), and the drafts themselves. Functions take the session first and never commit."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from connectors.base import InboundMessage, IntakeReply, revealed
from connectors.base import Intake as IntakePlugin
from connectors.registry import UnknownConnector, intake_factory
from exchange.accounts import service as accounts
from exchange.accounts.models import Role, User
from exchange.agencies.models import Agency
from exchange.agencies.service import get_agency
from exchange.audit import service as audit
from exchange.audit.failures import RejectionTally
from exchange.errors import InvalidInput, NotFound
from exchange.i18n import t
from exchange.intake.models import FieldDraft, Intake, IntakeMessage
from exchange.intake.reading import Problem, Reading, read_message
from exchange.keyring import Keyring
from exchange.protection.sealing import Sealer
from exchange.ratelimit import KeyRateLimit
from exchange.regions import service as regions
from exchange.registry.service import SchemaRegistry
from exchange.reports import service as reports
from exchange.reports.contracts import ReportSubmission

DRAFTS_SHOWN = 100
# An unfinished report: a month to complete it in the console, then its content is destroyed.
DRAFT_RETENTION = timedelta(days=30)
logger = logging.getLogger(__name__)


class IntakeNotFound(NotFound):
    code = "intake_not_found"


class DraftNotFound(NotFound):
    code = "draft_not_found"


def _config_purpose(intake_id: str) -> str:
    return f"intake-config:{intake_id}"


def register(
    session: Session, *, agency_id: str, plugin: str, label: str, sealer: Sealer, actor: str
) -> tuple[Intake, dict[str, str]]:
    """A new intake for the agency and the secrets of its config, shown only now."""
    get_agency(session, agency_id)
    try:
        made = intake_factory(plugin)
    except UnknownConnector:
        raise InvalidInput.at(t("intake.unknown_plugin", name=plugin), "/plugin") from None
    config = made.config_model()
    intake_id = uuid.uuid4().hex
    document = revealed(config)
    sealed = sealer.seal(json.dumps(document).encode(), purpose=_config_purpose(intake_id))
    intake = Intake(
        id=intake_id, agency_id=agency_id, plugin=plugin, label=label, config_sealed=sealed
    )
    session.add(intake)
    audit.record(
        session,
        action="intake.registered",
        subject=f"intake:{intake.id}",
        actor=actor,
        details={"agency": agency_id, "plugin": plugin},
    )
    secrets = {k: str(v) for k, v in document.items() if k in _secret_fields(config)}
    return intake, secrets


def _secret_fields(config: BaseModel) -> set[str]:
    schema = type(config).model_json_schema()
    return {name for name, spec in schema.get("properties", {}).items() if spec.get("writeOnly")}


def get_intake(session: Session, intake_id: str) -> Intake:
    intake = session.get(Intake, intake_id)
    if intake is None or not intake.active:
        raise IntakeNotFound(t("intake.not_found", id=intake_id))
    return intake


def list_intakes(session: Session, *, agency_id: str | None) -> list[Intake]:
    query = select(Intake).where(col(Intake.active).is_(True)).order_by(col(Intake.created_at))
    if agency_id is not None:
        query = query.where(Intake.agency_id == agency_id)
    return list(session.exec(query))


def remove(session: Session, *, intake: Intake, actor: str, now: datetime) -> None:
    intake.active = False
    intake.removed_at = now
    session.add(intake)
    audit.record(session, action="intake.removed", subject=f"intake:{intake.id}", actor=actor)


def channel(intake: Intake) -> IntakePlugin:
    """A fresh instance of the intake's plugin: built per request, sharing nothing."""
    return intake_factory(intake.plugin)()


def open_config(intake: Intake, sealer: Sealer) -> BaseModel:
    document = json.loads(sealer.unseal(intake.config_sealed, purpose=_config_purpose(intake.id)))
    return intake_factory(intake.plugin).config_model.model_validate(document)


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitting:
    """What a submission on a user's behalf needs of the hub."""

    registry: SchemaRegistry
    keyring: Keyring
    submissions: KeyRateLimit
    rejections: RejectionTally


# Sixteen digits in a row (a NIK) or a telephone number, in a message's free text.
IDENTIFIER = re.compile(r"(?<!\d)(\d[\s.-]?){15}\d(?!\d)|(\+62|\b0)8\d{7,11}\b", re.ASCII)
UNREGISTERED = "Nomor ini tidak terdaftar sebagai pelapor di hub. Hubungi admin instansi Anda."
MAX_TEXT = 1600  # ten concatenated text messages


def receive(
    session: Session,
    *,
    intake: Intake,
    messages: list[InboundMessage],
    hub: Submitting,
    now: datetime,
) -> list[IntakeReply]:
    """A reply for each message: the report it became, or why not (then, when it came from
    a registered reporter, it is a draft in that user's console). Each message is handled in
    a savepoint of its own: one that fails is answered as such and spoils none of the
    others. A message id seen before, for the same sender and text, gets the same answer and
    makes nothing new, however late the channel retries; for another, it is refused."""
    agency = get_agency(session, intake.agency_id)
    replies = []
    for message in messages:
        sender = _digest(hub, "sender", message.sender)
        text = _digest(hub, "text", message.text)
        outcome: dict[str, Any] = {"message": message.message_id}
        seen = session.get(IntakeMessage, (intake.id, message.message_id))
        if seen is not None:
            same = (seen.sender_digest, seen.text_digest) == (sender, text)
            outcome["outcome"] = "repeated" if same else "id_reused"
            reply = (
                hub.keyring.sealer.unseal(seen.reply_sealed, purpose=_reply_purpose(seen)).decode(
                    errors="surrogatepass"
                )
                if same
                else "Nomor pesan ini sudah dipakai untuk pesan lain; pesan tidak diproses."
            )
        else:
            try:
                with session.begin_nested():
                    reply = _handle(session, intake, agency, message, hub, now, outcome)
            except Exception:  # a message the hub cannot handle must not sink the batch
                logger.exception("intake message failed", extra={"intake": intake.id})
                outcome = {"message": message.message_id, "outcome": "failed"}
                reply = "Pesan tidak dapat diproses. Coba lagi, atau lapor lewat konsol."
            record = IntakeMessage(
                intake_id=intake.id,
                message_id=message.message_id,
                sender_digest=sender,
                text_digest=text,
                outcome=outcome["outcome"],
                report_id=outcome.get("report"),
                draft_id=outcome.get("draft"),
                reply_sealed=b"",
            )
            record.reply_sealed = hub.keyring.sealer.seal(
                reply.encode(errors="surrogatepass"), purpose=_reply_purpose(record)
            )
            session.add(record)
            session.flush()
        audit.record(
            session,
            action="intake.received",
            subject=f"intake:{intake.id}",
            actor=f"intake:{intake.id}",
            details=outcome,
        )
        replies.append(IntakeReply(message.message_id, message.sender, reply))
    return replies


def _digest(hub: Submitting, kind: str, value: str) -> str:
    """A keyed digest: equal values compare equal, and the number or text stays unknown."""
    data = f"intake-{kind}:{value}".encode(errors="surrogatepass")
    return hmac.new(hub.keyring.linking_key, data, hashlib.sha256).hexdigest()


def _reply_purpose(record: IntakeMessage) -> str:
    return f"intake-reply:{record.intake_id}:{record.message_id}"


def _handle(
    session: Session,
    intake: Intake,
    agency: Agency,
    message: InboundMessage,
    hub: Submitting,
    now: datetime,
    outcome: dict[str, Any],
) -> str:
    user = accounts.user_by_phone(session, message.sender)
    if (
        user is None
        or user.disabled_at is not None
        or user.agency_id != agency.id
        or Role.reporter not in user.role_set
        or not agency.active
    ):
        outcome["outcome"] = "unknown_sender"
        return UNREGISTERED
    if len(message.text) > MAX_TEXT:
        outcome["outcome"] = "too_long"
        return f"Pesan terlalu panjang (lebih dari {MAX_TEXT} huruf). Lapor lewat konsol."
    if "\0" in message.text:
        outcome["outcome"] = "unreadable"
        return "Pesan memuat huruf yang tidak dapat dibaca. Kirim ulang, atau lapor lewat konsol."
    reading = read_message(
        message.text,
        registry=hub.registry,
        sender_agency=agency.id,
        area=agency.jurisdiction,
        villages=functools.partial(regions.villages_named, session),
        received_at=now,
    )
    text_pointer = reading.report_type.sms.get("text") if reading.report_type else None
    free_text = str(reading.payload.get(text_pointer.strip("/"), "")) if text_pointer else ""
    if IDENTIFIER.search(free_text):
        # A text message is no channel for a person's NIK or number: the officer completes
        # the report in the console instead, where it travels encrypted.
        reading.problems.append(
            Problem(
                text_pointer or "", "Jangan kirim NIK atau nomor HP lewat SMS; lengkapi di konsol."
            )
        )
    if not reading.problems and reading.report_type is not None:
        result = reports.accept(
            session,
            sender=agency,
            principal=accounts.principal_of(user, agency),
            registry=hub.registry,
            keyring=hub.keyring,
            submission=ReportSubmission(
                type=reading.report_type.name,
                version=reading.report_type.version,
                payload=reading.payload,
            ),
            idempotency_key=f"intake:{intake.id}:{message.message_id}",
            signature_header=None,
            submissions=hub.submissions,
            rejections=hub.rejections,
            locale="id",
        )
        if result.status == 202:
            document = result.document
            outcome |= {"outcome": "submitted", "report": document["id"]}
            went = ", ".join(document.get("routed_to", [])) or "belum ada penerima"
            number = document["id"][:8]
            return f"Laporan diterima, nomor {number}. Dikirim ke: {went}. Terima kasih."
        error = result.document["error"]  # the API's refusal, in Indonesian
        reading.problems += [
            Problem(str(d.get("pointer", "")).removeprefix("/payload"), str(d["message"]))
            for d in error.get("details", [])
        ] or [Problem("", str(error["message"]))]
    draft = _draft(session, intake, user, message, reading, hub.keyring.sealer)
    outcome |= {"outcome": "draft", "draft": draft.id}
    return _draft_reply([{"pointer": p.pointer, "message": p.message} for p in reading.problems])


def _draft_reply(problems: list[dict[str, str]]) -> str:
    listed = " ".join(p["message"] for p in problems[:3])
    more = f" (dan {len(problems) - 3} lagi)" if len(problems) > 3 else ""
    return (
        f"Laporan belum terkirim. {listed}{more} Pesan disimpan sebagai draf: lengkapi di "
        "konsol (Lapor > Draf), atau kirim ulang SMS yang sudah dibetulkan."
    )


def _draft(
    session: Session,
    intake: Intake,
    user: User,
    message: InboundMessage,
    reading: Reading,
    sealer: Sealer,
) -> FieldDraft:
    draft_id = uuid.uuid4().hex
    content = {
        "text": message.text,
        "payload": reading.payload,
        "problems": [{"pointer": p.pointer, "message": p.message} for p in reading.problems],
    }
    draft = FieldDraft(
        id=draft_id,
        user_id=user.id,
        agency_id=user.agency_id,
        intake_id=intake.id,
        message_id=message.message_id,
        report_type=reading.report_type.name if reading.report_type else None,
        content_sealed=sealer.seal(json.dumps(content).encode(), purpose=_draft_purpose(draft_id)),
    )
    session.add(draft)
    return draft


def _draft_purpose(draft_id: str) -> str:
    return f"field-draft:{draft_id}"


def _draft_content(draft: FieldDraft, sealer: Sealer) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(
        sealer.unseal(draft.content_sealed, purpose=_draft_purpose(draft.id))
    )
    return content


# --- drafts in the console --------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    record: FieldDraft
    text: str
    payload: dict[str, Any]
    problems: list[dict[str, str]]


def select_open_drafts(user_id: str | None = None) -> SelectOfScalar[FieldDraft]:
    """The drafts not yet sent or discarded (of one user), newest first."""
    query = select(FieldDraft).where(col(FieldDraft.closed_at).is_(None))
    if user_id is not None:
        query = query.where(FieldDraft.user_id == user_id)
    return query.order_by(col(FieldDraft.created_at).desc())


def open_drafts(session: Session, *, user_id: str, sealer: Sealer) -> list[Draft]:
    rows = session.exec(select_open_drafts(user_id).limit(DRAFTS_SHOWN))
    return [_opened(row, sealer) for row in rows]


def get_draft(session: Session, *, user_id: str, draft_id: str, sealer: Sealer) -> Draft:
    row = session.get(FieldDraft, draft_id)
    if row is None or row.user_id != user_id or row.closed_at is not None:
        raise DraftNotFound(t("intake.draft_not_found", id=draft_id))
    return _opened(row, sealer)


def _opened(row: FieldDraft, sealer: Sealer) -> Draft:
    content = _draft_content(row, sealer)
    return Draft(row, content["text"], content["payload"], content["problems"])


def close_draft(
    session: Session, *, draft: FieldDraft, report_id: str | None, now: datetime
) -> None:
    """The draft was sent (``report_id``) or discarded; either way it leaves the list, and
    its content (the message, which may name people) is destroyed: the report, if any, is
    what remains, under the report's own protection and retention."""
    draft.closed_at = now
    draft.report_id = report_id
    draft.content_sealed = b""
    session.add(draft)


def expire_drafts(session: Session, *, now: datetime, actor: str) -> int:
    """Close every draft left open past its retention, destroying its content; how many."""
    stale = session.exec(
        select(FieldDraft).where(
            col(FieldDraft.closed_at).is_(None), col(FieldDraft.created_at) < now - DRAFT_RETENTION
        )
    ).all()
    for draft in stale:
        close_draft(session, draft=draft, report_id=None, now=now)
    if stale:
        audit.record(
            session,
            action="drafts.expired",
            subject="drafts",
            actor=actor,
            details={"count": len(stale)},
        )
    return len(stale)
