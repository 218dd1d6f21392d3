"""``exchange subscription ...``: operators manage subscriptions on an agency's behalf."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from exchange.agencies.service import get_agency
from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, dump, emit, load_settings, reporting, running_hub
from exchange.errors import ErrorDetail, InvalidInput
from exchange.i18n import t
from exchange.routing import service
from exchange.routing.contracts import SubscriptionCreate, SubscriptionOut

subscription_app = typer.Typer(
    help="Subscriptions: who receives which reports, and how.", no_args_is_help=True
)


def _config(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput.at(t("request.malformed_json", reason=error.msg), "/config") from None
    if not isinstance(document, dict):
        raise InvalidInput(
            t("request.invalid"),
            details=[
                ErrorDetail(t("validation.value_error", reason="an object"), pointer="/config")
            ],
        )
    return document


def _print_secrets(secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        typer.echo(f"  {name}: {value}")
    if secrets:
        typer.echo("Store the secret now: it is not shown again.")


@subscription_app.command("add")
def subscription_add(
    agency_id: Annotated[str, typer.Argument(help="The agency that receives.")],
    connector: Annotated[str, typer.Option(help="webhook, inbox, filedrop, email or a plugin.")],
    config: Annotated[str, typer.Option(help="The connector's settings as JSON.")] = "{}",
    report_type: Annotated[list[str], typer.Option("--type", help="Report type (repeat).")] = [],  # noqa: B006
    region: Annotated[list[str], typer.Option(help="Region-code prefix (repeat).")] = [],  # noqa: B006
    min_severity: Annotated[str | None, typer.Option(help="low, medium, high, critical.")] = None,
    indicator: Annotated[list[str], typer.Option(help="Any-of indicator (repeat).")] = [],  # noqa: B006
    throttle: Annotated[float | None, typer.Option(help="Deliveries per second, at most.")] = None,
    label: Annotated[str, typer.Option(help="A name for people.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Subscribe an agency to reports. Secrets in the config are shown once."""
    with reporting(as_json), running_hub(load_settings()) as hub:
        request = SubscriptionCreate.model_validate(
            {
                "label": label,
                "types": report_type,
                "regions": region,
                "min_severity": min_severity,
                "indicators": indicator,
                "connector": connector,
                "config": _config(config),
                "throttle_per_s": throttle,
            }
        )
        with hub.session() as session:
            get_agency(session, agency_id)
            subscription, secrets = service.create_subscription(
                session,
                agency_id=agency_id,
                request=request,
                registry=hub.registry,
                context=hub.connector_context,
                sealer=hub.keyring.sealer,
                limit=hub.settings.max_subscriptions_per_agency,
                actor=operator_actor(),
            )
            session.flush()
            document = {**dump(SubscriptionOut.of(subscription)), "secrets": secrets}

    def human() -> None:
        typer.echo(f"subscription {document['id']} for {agency_id} via {connector}")
        _print_secrets(secrets)

    emit(document, as_json=as_json, human=human)


@subscription_app.command("list")
def subscription_list(
    agency_id: Annotated[str | None, typer.Option("--agency", help="Only this agency's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List live subscriptions."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        rows = [
            dump(SubscriptionOut.of(s))
            for s in service.list_subscriptions(session, agency_id=agency_id)
        ]

    def human() -> None:
        for row in rows:
            state = "active" if row["active"] else f"disabled ({row['disabled_reason']})"
            filters = ",".join(row["types"]) or "all types"
            typer.echo(
                f"{row['id']}  {row['agency_id']:<24} {row['connector']:<9} {filters}  {state}"
            )

    emit(rows, as_json=as_json, human=human)


@subscription_app.command("delete")
def subscription_delete(subscription_id: str, as_json: JsonFlag = False) -> None:
    """Stop a subscription; its deliveries still due end as dead."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        subscription = service.delete_subscription(
            session, agency_id=None, subscription_id=subscription_id, actor=operator_actor()
        )
        document = dump(SubscriptionOut.of(subscription))
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(f"subscription {subscription_id} deleted"),
    )


@subscription_app.command("rotate-secret")
def subscription_rotate_secret(subscription_id: str, as_json: JsonFlag = False) -> None:
    """A new signing secret (shown once); the previous one also signs for 24 hours."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        subscription, secrets = service.rotate_secret(
            session,
            agency_id=None,
            subscription_id=subscription_id,
            sealer=hub.keyring.sealer,
            actor=operator_actor(),
        )
        document = {**dump(SubscriptionOut.of(subscription)), "secrets": secrets}
    emit(document, as_json=as_json, human=lambda: _print_secrets(secrets))
