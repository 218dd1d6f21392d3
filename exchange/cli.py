"""The ``exchange`` command. Every command that creates or lists something takes ``--json``
and then prints exactly one JSON document on stdout (errors too, with a non-zero exit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from sqlmodel import Session

from exchange import migrations
from exchange.accounts import service as accounts
from exchange.accounts.cli import user_app
from exchange.agencies import service as agencies
from exchange.agencies.cli import agency_app
from exchange.agencies.contracts import (
    AgencyOut,
    ApiKeyOut,
)
from exchange.audit.cli import audit_app, witness_app
from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, dump, emit, hub_session, load_settings, reporting
from exchange.db import normalise_url
from exchange.demo import BANTEN, OPERATOR, DemoAgency
from exchange.errors import ExchangeError
from exchange.hub import Hub
from exchange.i18n import t
from exchange.intake.cli import intake_app
from exchange.keyring import Keyring
from exchange.ops.cli import backup, backup_key, restore
from exchange.protection.cli import keys_app
from exchange.regions import service as regions
from exchange.registry.docs import markdown
from exchange.registry.service import SchemaRegistry, default_schemas_dir
from exchange.reports.cli import purge
from exchange.routing import service as routing
from exchange.routing.cli import subscription_app
from exchange.routing.contracts import SubscriptionCreate
from exchange.settings import Environment
from exchange.statistics.cli import stats_app
from workers.broker import periodic_actors, run_until_signalled

app = typer.Typer(
    help="Exchange hub: secure exchange of early-warning reports between agencies.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
schemas_app = typer.Typer(help="The shared report schemas.", no_args_is_help=True)
regions_app = typer.Typer(help="The region directory (Kemendagri codes).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(regions_app, name="regions")
app.add_typer(audit_app, name="audit")
app.add_typer(witness_app, name="witness")
app.add_typer(agency_app, name="agency")
app.add_typer(user_app, name="user")
app.add_typer(stats_app, name="stats")
app.add_typer(intake_app, name="intake")
app.add_typer(subscription_app, name="subscription")
app.add_typer(keys_app, name="keys")
app.command("purge")(purge)
app.command("backup")(backup)
app.command("restore")(restore)
app.command("backup-key")(backup_key)

# --- init, serve, worker, db -----------------------------------------------------------------


def _register(session: Session, hub: Hub, demo: DemoAgency) -> dict[str, Any]:
    """Create a demo agency with one key and its subscriptions, or leave an existing one as
    it is."""
    try:
        agency = agencies.get_agency(session, demo.id)
    except agencies.AgencyNotFound:
        pass
    else:
        return {**dump(AgencyOut.of(agency)), "created": False, "api_key": None}
    agency = agencies.create_agency(
        session,
        agency_id=demo.id,
        name=demo.name,
        kind=demo.kind,
        jurisdiction=demo.jurisdiction,
        clearance=demo.clearance,
        actor=operator_actor(),
    )
    issued = agencies.create_api_key(
        session,
        agency_id=demo.id,
        scopes=demo.scopes,
        label="created by exchange init",
        actor=operator_actor(),
    )
    for body in demo.subscriptions:
        routing.create_subscription(
            session,
            agency_id=demo.id,
            request=SubscriptionCreate.model_validate(body),
            registry=hub.registry,
            context=hub.connector_context,
            sealer=hub.keyring.sealer,
            limit=hub.settings.max_subscriptions_per_agency,
            actor=operator_actor(),
        )
    user, password = accounts.create_user(
        session,
        agency=agency,
        username=f"petugas.{demo.id}",
        display_name=f"Petugas {demo.name}",
        roles=demo.roles,
        actor=operator_actor(),
    )
    key = {**dump(ApiKeyOut.of(issued.key)), "token": issued.token}
    return {
        **dump(AgencyOut.of(agency)),
        "created": True,
        "api_key": key,
        "user": {"username": user.username, "one_time_password": password},
        "subscriptions": [body["label"] for body in demo.subscriptions],
    }


def _region_directory(session: Session) -> dict[str, Any]:
    """Load the Kemendagri directory shipped with the hub unless one is loaded (unknown
    region codes are refused from the first report on), and Banten's outlines unless some
    are."""
    if not regions.has_boundaries(session):  # the map's outlines, Banten's shipped
        regions.import_boundaries(
            session, data=regions.SHIPPED_BOUNDARIES.read_bytes(), actor=operator_actor()
        )
    if regions.is_loaded(session):
        return {"loaded": False}
    with regions.SHIPPED_DIRECTORY.open(encoding="utf-8", newline="") as lines:
        result = regions.import_directory(session, lines=lines, actor=operator_actor())
    return {"loaded": True, "count": result.count, "sha256": result.sha256}


@app.command()
def init(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also register the Banten demo agencies.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create or upgrade the database, generate the hub's keys if missing, load the shipped
    region directory and outlines if none are loaded, and register the operator agency
    (and with --demo the Banten agencies and their subscriptions), printing new API keys
    once."""
    settings = load_settings()
    with reporting(as_json):
        keyring = Keyring.load(settings.key_dir, origin=settings.log_origin, create_missing=True)
        migrations.upgrade(settings.database_url)
        hub = Hub.start(settings)
        try:
            with hub.session() as session:
                directory = _region_directory(session)
                registered = [
                    _register(session, hub, d) for d in (OPERATOR, *(BANTEN if demo else ()))
                ]
        finally:
            hub.close()
    document = {
        "database": _safe_url(settings.database_url),
        "key_dir": str(settings.key_dir),
        "published_keys": keyring.public_document(),
        "regions": directory,
        "agencies": registered,
    }

    def human() -> None:
        typer.echo(f"database ready: {document['database']}")
        typer.echo(f"hub keys in {settings.key_dir}")
        if directory["loaded"]:
            typer.echo(f"region directory loaded: {directory['count']} Kemendagri codes")
        for entry in registered:
            key = entry["api_key"]
            if key is None:
                typer.echo(f"  {entry['id']:<24} exists (keys unchanged)")
            else:
                typer.echo(f"  {entry['id']:<24} {' '.join(key['scopes']):<22} {key['token']}")
                user = entry["user"]
                typer.echo(
                    f"  {'':<24} console user {user['username']}, "
                    f"one-time password {user['one_time_password']}"
                )
        if any(e["api_key"] for e in registered):
            typer.echo("Store these keys and passwords now: the hub keeps only their hashes.")
            typer.echo("The console: http://127.0.0.1:8000/console (exchange serve)")

    emit(document, as_json=as_json, human=human)


def _safe_url(url: str) -> str:
    return normalise_url(url).render_as_string(hide_password=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (with worker threads inside it when the broker is memory://)."""
    settings = load_settings()
    with reporting(False):
        if settings.env is Environment.dev:
            migrations.upgrade(settings.database_url)
        elif not migrations.is_current(settings.database_url):
            raise ExchangeError(
                t(
                    "config.invalid",
                    problem="the database schema is behind: run 'exchange db upgrade'",
                )
            )
        # Fail here, with a message, rather than in each worker process.
        Hub.start(settings).close()
    _reset_multiprocess_metrics()
    uvicorn.run(
        "exchange.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


def _reset_multiprocess_metrics() -> None:
    """Start with an empty PROMETHEUS_MULTIPROC_DIR: files left by an earlier run would be
    counted again (prometheus-client's multiprocess mode requires a wipe at start)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


@app.command()
def worker(
    threads: Annotated[int | None, typer.Option(help="Worker threads.")] = None,
) -> None:
    """Run a worker process for the Redis broker until SIGINT or SIGTERM."""
    settings = load_settings()
    with reporting(False):
        if settings.embedded_broker:
            raise ExchangeError(
                t(
                    "config.invalid",
                    problem="with EXCHANGE_BROKER_URL=memory:// jobs run inside 'exchange serve'; "
                    "set EXCHANGE_BROKER_URL=redis://host:port/0 to run separate workers",
                )
            )
        hub = Hub.start(settings)
    typer.echo(f"worker: {threads or settings.worker_threads} threads", err=True)
    try:
        run_until_signalled(
            hub.broker,
            threads=threads or settings.worker_threads,
            periodic=periodic_actors(settings),
        )
    finally:
        hub.database.dispose()


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Schemas directory (default: the hub's).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every schema: meta-schema, $refs, examples against both validators, the x-
    annotations, and each new version's compatibility with the previous one."""
    registry = SchemaRegistry(directory or default_schemas_dir())
    problems = registry.problems()
    document = {
        "ok": not problems,
        "types": {name: [v.version for v in registry.versions(name)] for name in registry.names()},
        "problems": problems,
    }

    def human() -> None:
        for problem in problems:
            typer.echo(problem, err=True)
        typer.echo(f"{len(registry.names())} report types, {len(problems)} problem(s)")

    emit(document, as_json=as_json, human=human)
    if problems:
        raise typer.Exit(1)


@schemas_app.command("doc")
def schemas_doc() -> None:
    """Print docs/schemas.md: every report type, its fields and an example."""
    typer.echo(markdown(SchemaRegistry(default_schemas_dir())), nl=False)


@regions_app.command("import")
def regions_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSV with the columns code,name (default: the list shipped)."),
    ] = regions.SHIPPED_DIRECTORY,
    as_json: JsonFlag = False,
) -> None:
    """Replace the region directory with a Kemendagri code list (by default the one shipped
    with the hub). Reports are then checked against it: an unknown village or district code
    is rejected."""
    with (
        reporting(as_json),
        hub_session(load_settings()) as session,
        file.open(encoding="utf-8-sig", newline="") as lines,
    ):
        result = regions.import_directory(session, lines=lines, actor=operator_actor())
    document = {"count": result.count, "sha256": result.sha256}
    emit(document, as_json=as_json, human=lambda: typer.echo(f"{result.count} region codes loaded"))


@regions_app.command("boundaries")
def regions_boundaries(
    file: Annotated[
        Path,
        typer.Argument(
            help="GeoJSON FeatureCollection of outlines, one Feature per region code "
            "(default: Banten's, shipped)."
        ),
    ] = regions.SHIPPED_BOUNDARIES,
    as_json: JsonFlag = False,
) -> None:
    """Add regions' outlines for the statistics map, replacing those of the same codes:
    another province's file adds to Banten's."""
    with reporting(as_json), hub_session(load_settings()) as session:
        result = regions.import_boundaries(session, data=file.read_bytes(), actor=operator_actor())
    document = {"count": result.count, "sha256": result.sha256}
    emit(document, as_json=as_json, human=lambda: typer.echo(f"{result.count} outlines loaded"))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (default: the latest)."""
    settings = load_settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_safe_url(settings.database_url)}", err=True)
