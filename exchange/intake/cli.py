"""``exchange intake``: the channels an agency receives messages from (acting as the
operator: every change is audited under the operator's login)."""

from __future__ import annotations

from typing import Annotated

import typer

from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, emit, load_settings, reporting, running_hub
from exchange.intake import service
from exchange.models import utcnow

intake_app = typer.Typer(
    help="Intakes: channels (a text-message gateway) whose messages become reports.",
    no_args_is_help=True,
)


@intake_app.command("add")
def intake_add(
    agency_id: Annotated[str, typer.Argument(help="The agency whose gateway it is.")],
    plugin: Annotated[str, typer.Option(help="The intake plugin.")] = "sms-gateway",
    label: Annotated[str, typer.Option(help="What it is, e.g. 'SMS gateway, Polres'.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register an intake; print its endpoint and its secret, once: configure both in the
    gateway."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        intake, secrets = service.register(
            session,
            agency_id=agency_id,
            plugin=plugin,
            label=label,
            sealer=hub.keyring.sealer,
            actor=operator_actor(),
        )
        out = {"id": intake.id, "endpoint": f"/v1/intakes/{intake.id}", "secrets": secrets}
    emit(
        out,
        as_json=as_json,
        human=lambda: typer.echo(
            f"intake {out['id']}: POST {out['endpoint']}; "
            + ", ".join(f"{k} {v}" for k, v in secrets.items())
            + " (shown once)"
        ),
    )


@intake_app.command("list")
def intake_list(
    agency_id: Annotated[str | None, typer.Option("--agency", help="Only this agency's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the intakes in use (never their secrets)."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        rows = [
            {"id": i.id, "agency_id": i.agency_id, "plugin": i.plugin, "label": i.label}
            for i in service.list_intakes(session, agency_id=agency_id)
        ]

    def human() -> None:
        for row in rows:
            typer.echo(f"{row['id']}  {row['agency_id']:<24} {row['plugin']:<12} {row['label']}")

    emit(rows, as_json=as_json, human=human)


@intake_app.command("remove")
def intake_remove(intake_id: str, as_json: JsonFlag = False) -> None:
    """Stop an intake: its endpoint refuses every request from now on."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        intake = service.get_intake(session, intake_id)
        service.remove(session, intake=intake, actor=operator_actor(), now=utcnow())
    emit(
        {"id": intake_id, "removed": True},
        as_json=as_json,
        human=lambda: typer.echo(f"intake {intake_id} removed"),
    )
