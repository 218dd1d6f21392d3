"""``exchange purge``: destroying reports' data, one or every expired one."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func
from sqlmodel import select

from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, emit, load_settings, reporting, running_hub
from exchange.errors import InvalidInput
from exchange.i18n import t
from exchange.intake import service as intake
from exchange.models import utcnow
from exchange.protection.models import ReportKey
from exchange.reports import service


def purge(
    report_id: Annotated[str | None, typer.Argument(help="The report to purge.")] = None,
    expired: Annotated[
        bool, typer.Option(help="Purge every report older than its type's retention.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "operator request",
    dry_run: Annotated[bool, typer.Option(help="List what would be purged.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Destroy reports' data keys: one report, or every expired one (with the text-message
    drafts left unfinished for a month). What remains is metadata and the audit trail."""
    with reporting(as_json), running_hub(load_settings()) as hub:
        if (report_id is None) == (not expired):
            raise InvalidInput.at(t("protection.purge_what"), "/report_id")
        with hub.session() as session:
            targets = (
                service.expired(session, registry=hub.registry, now=utcnow())
                if expired
                else [report_id or ""]
            )
            drafts = 0
            if not dry_run:
                why = "retention expired" if expired else reason
                for target in targets:
                    service.purge(session, report_id=target, actor=operator_actor(), reason=why)
                if expired:  # drafts left unfinished go too
                    drafts = intake.expire_drafts(session, now=utcnow(), actor=operator_actor())
            remaining = session.exec(select(func.count()).select_from(ReportKey)).one()
    document = {
        "purged": [] if dry_run else targets,
        "would_purge": targets if dry_run else [],
        "reports_with_data": remaining,
        "drafts_expired": drafts,
    }
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(
            f"{'would purge' if dry_run else 'purged'} {len(targets)} report(s)"
        ),
    )
