"""``exchange stats``: the statistics API's answer on the command line, and the backfill of
facts for reports accepted before they were kept."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast, get_args

import typer

from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, emit, load_settings, reporting, running_hub
from exchange.errors import InvalidInput
from exchange.i18n import t
from exchange.models import utcnow
from exchange.statistics import service
from exchange.statistics.contracts import Dimension, Level
from exchange.statistics.export import csv_text
from exchange.statistics.facts import WIB

stats_app = typer.Typer(
    help="Counts of reports and people at risk by region (docs/early-warning.md).",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _date(value: str | None, pointer: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise InvalidInput.at(t("stats.bad_date"), pointer) from None


@stats_app.callback()
def show(
    context: typer.Context,
    agency: Annotated[str | None, typer.Option(help="Count what this agency may see.")] = None,
    public: Annotated[
        bool, typer.Option(help="Count every report, small cells withheld, for publication.")
    ] = False,
    level: Annotated[str, typer.Option(help="kabupaten, kecamatan or desa.")] = "kabupaten",
    within: Annotated[str | None, typer.Option(help="Province, regency or district code.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    to: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="One report type.")] = None,
    indicator: Annotated[str | None, typer.Option(help="One indicator.")] = None,
    group_by: Annotated[
        str | None, typer.Option(help="indicator, destination, severity, month or type.")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Reports and people at risk per region, as `GET /v1/stats` answers them."""
    if context.invoked_subcommand is not None:
        return
    with reporting(as_json), running_hub(load_settings()) as hub:
        if (agency is None) == (not public):
            raise InvalidInput.at(t("stats.reader"), "/agency")
        if level not in get_args(Level):
            raise InvalidInput.at(t("stats.one_of", values=", ".join(get_args(Level))), "/level")
        if group_by is not None and group_by not in get_args(Dimension):
            raise InvalidInput.at(
                t("stats.one_of", values=", ".join(get_args(Dimension))), "/group_by"
            )
        start, end = _date(from_, "/from"), _date(to, "/to")
        with hub.session() as session:
            answer = service.statistics(
                session,
                reader=agency or "",
                query=service.StatsQuery(
                    level=cast(Level, level),
                    within=within or hub.settings.statistics_area,
                    period_from=start.date() if start else None,
                    period_to=end.date() if end else None,
                    type=type_,
                    indicator=indicator,
                    group_by=cast(Dimension | None, group_by),
                    public=public,
                ),
                registry=hub.registry,
                today=utcnow().astimezone(WIB).date(),
            )
    if as_csv:
        typer.echo(csv_text(answer), nl=False)
        return
    emit(
        answer.model_dump(mode="json", by_alias=True),
        as_json=as_json,
        human=lambda: typer.echo(csv_text(answer), nl=False),
    )


@stats_app.command("backfill")
def backfill(as_json: JsonFlag = False) -> None:
    """Read the facts of reports accepted before statistics were kept, a batch per
    transaction (audited)."""
    total = service.Backfilled()
    with reporting(as_json), running_hub(load_settings()) as hub:
        while True:
            with hub.session() as session:
                done = service.backfill_batch(
                    session, after=total.last, registry=hub.registry, sealer=hub.keyring.sealer
                )
            if done is None:
                break
            total = service.Backfilled(
                counted=total.counted + done.counted,
                purged_without_facts=total.purged_without_facts + done.purged_without_facts,
                unknown_type=total.unknown_type + done.unknown_type,
                last=done.last,
            )
        with hub.session() as session:
            service.record_backfill(session, done=total, actor=operator_actor())
    document = {
        "counted": total.counted,
        "purged_without_facts": total.purged_without_facts,
        "unknown_type": total.unknown_type,
    }
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(
            f"counted {total.counted} report(s); {total.purged_without_facts} purged and "
            f"{total.unknown_type} of an unknown type could not be read"
        ),
    )
