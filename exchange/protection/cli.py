"""``exchange keys rotate``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from sqlmodel import select

from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, emit, load_settings, reporting, running_hub
from exchange.hub import Hub
from exchange.protection import service
from exchange.protection.models import ReportKey
from exchange.protection.sealing import SEALING_DIR, create_key, key_id_of, sealed_key_id
from exchange.routing.models import Subscription

keys_app = typer.Typer(help="The hub's key-encryption keys.", no_args_is_help=True)

# After the last pass that found nothing, wait this long and look once more: a process
# that sealed with the old key just before it noticed the new one has committed by then.
SETTLE_S = 1.0


@keys_app.command("rotate")
def keys_rotate(
    retire: Annotated[
        bool, typer.Option(help="Delete the older sealing keys once nothing uses them.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a new key-encryption key and reseal every report data key and subscription
    config with it, in batches, while the hub keeps running."""
    settings = load_settings()
    with reporting(as_json), running_hub(settings) as hub:
        new_key = create_key(settings.key_dir)
        sealer = hub.keyring.sealer
        resealed = 0
        while True:
            with hub.session() as session:
                count = service.rewrap(session, sealer=sealer)
            resealed += count
            if count == 0:
                time.sleep(SETTLE_S)
                with hub.session() as session:
                    count = service.rewrap(session, sealer=sealer)
                resealed += count
                if count == 0:
                    break
        with hub.session() as session:
            service.record_rotation(
                session, key_id=key_id_of(new_key), resealed=resealed, actor=operator_actor()
            )
        retired = _retire(hub, active=key_id_of(new_key)) if retire else []
    document = {"key_id": key_id_of(new_key), "resealed": resealed, "retired": retired}
    emit(
        document,
        as_json=as_json,
        human=lambda: typer.echo(
            f"sealing key {key_id_of(new_key)} active; {resealed} keys resealed; "
            f"{len(retired)} old key(s) retired"
        ),
    )


def _retire(hub: Hub, *, active: str) -> list[str]:
    """Delete sealing keys that seal nothing any more (the active one stays)."""
    directory = hub.settings.key_dir / SEALING_DIR
    with hub.session() as session:
        in_use = set(session.exec(select(ReportKey.kek_id).distinct()).all())
        in_use |= {sealed_key_id(s.config_sealed) for s in session.exec(select(Subscription))}
    retired = []
    for path in sorted(directory.glob("*.key")):
        key_id = key_id_of(path)
        if key_id != active and key_id not in in_use:
            path.unlink()
            retired.append(key_id)
    return retired
