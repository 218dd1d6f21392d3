"""The ``exchange`` command. Every command that creates or lists something takes ``--json``
and then prints exactly one JSON document on stdout (errors too, with a non-zero exit)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from sqlmodel import Session

from exchange import migrations
from exchange.agencies import service as agencies
from exchange.agencies.contracts import (
    AgencyCreate,
    AgencyOut,
    AgencyUpdate,
    ApiKeyCreate,
    SigningKeyCreate,
    SigningKeyOut,
)
from exchange.agencies.models import AgencyKind, Scope
from exchange.agencies.router import api_key_out
from exchange.audit.cli import audit_app, witness_app
from exchange.audit.service import operator_actor
from exchange.console import JsonFlag, dump, emit, hub_session, load_settings, reporting
from exchange.db import Database, normalise_url
from exchange.demo import BANTEN, OPERATOR, DemoAgency
from exchange.errors import ExchangeError
from exchange.hub import Hub
from exchange.i18n import t
from exchange.keyring import Keyring
from exchange.protection.cli import keys_app, purge
from exchange.regions import service as regions
from exchange.registry.docs import markdown
from exchange.registry.service import SchemaRegistry, default_schemas_dir
from exchange.routing.cli import subscription_app
from exchange.settings import Environment
from workers.broker import periodic_actors, run_until_signalled

app = typer.Typer(
    help="Exchange hub: secure exchange of early-warning reports between agencies.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
schemas_app = typer.Typer(help="The shared report schemas.", no_args_is_help=True)
regions_app = typer.Typer(help="The region directory (Kemendagri codes).", no_args_is_help=True)
agency_app = typer.Typer(help="Agencies and their credentials.", no_args_is_help=True)
key_app = typer.Typer(help="API keys of an agency.", no_args_is_help=True)
signing_key_app = typer.Typer(help="Ed25519 public keys of an agency.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(regions_app, name="regions")
app.add_typer(audit_app, name="audit")
app.add_typer(witness_app, name="witness")
app.add_typer(agency_app, name="agency")
app.add_typer(subscription_app, name="subscription")
app.add_typer(keys_app, name="keys")
app.command("purge")(purge)
agency_app.add_typer(key_app, name="key")
agency_app.add_typer(signing_key_app, name="signing-key")

# --- init, serve, worker, db -----------------------------------------------------------------


def _register(session: Session, demo: DemoAgency) -> dict[str, Any]:
    """Create a demo agency with one key, or leave an existing one as it is."""
    try:
        agency = agencies.get_agency(session, demo.id)
    except agencies.AgencyNotFound:
        pass
    else:
        return {**dump(AgencyOut.model_validate(agency)), "created": False, "api_key": None}
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
    key = {**dump(api_key_out(issued.key)), "token": issued.token}
    return {**dump(AgencyOut.model_validate(agency)), "created": True, "api_key": key}


@app.command()
def init(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also register the Banten demo agencies.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create or upgrade the database, generate the hub's keys if missing, and register the
    operator agency (and with --demo the Banten agencies), printing new API keys once."""
    settings = load_settings()
    with reporting(as_json):
        keyring = Keyring.load(settings.key_dir, origin=settings.log_origin, create_missing=True)
        migrations.upgrade(settings.database_url)
        database = Database(settings.database_url)
        try:
            with database.session() as session:
                registered = [_register(session, d) for d in (OPERATOR, *(BANTEN if demo else ()))]
        finally:
            database.dispose()
    document = {
        "database": _safe_url(settings.database_url),
        "key_dir": str(settings.key_dir),
        "published_keys": keyring.public_document(),
        "agencies": registered,
    }

    def human() -> None:
        typer.echo(f"database ready: {document['database']}")
        typer.echo(f"hub keys in {settings.key_dir}")
        for entry in registered:
            key = entry["api_key"]
            if key is None:
                typer.echo(f"  {entry['id']:<24} exists (keys unchanged)")
            else:
                typer.echo(f"  {entry['id']:<24} {' '.join(key['scopes']):<22} {key['token']}")
        if any(e["api_key"] for e in registered):
            typer.echo("Store these keys now: the hub keeps only their hashes.")

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


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (default: the latest)."""
    settings = load_settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_safe_url(settings.database_url)}", err=True)


# --- agencies ---------------------------------------------------------------------------------


@agency_app.command("add")
def agency_add(
    agency_id: Annotated[str, typer.Argument(help="Slug id, e.g. polres-serang.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    kind: Annotated[AgencyKind, typer.Option(help="Kind of agency.")],
    jurisdiction: Annotated[str, typer.Option(help="Region-code prefix, e.g. 36.04.")],
    as_json: JsonFlag = False,
) -> None:
    """Register an agency."""
    with reporting(as_json):
        body = AgencyCreate(id=agency_id, name=name, kind=kind, jurisdiction=jurisdiction)
        with hub_session(load_settings()) as session:
            out = AgencyOut.model_validate(
                agencies.create_agency(
                    session,
                    agency_id=body.id,
                    name=body.name,
                    kind=body.kind,
                    jurisdiction=body.jurisdiction,
                    actor=operator_actor(),
                )
            )
    emit(dump(out), as_json=as_json, human=lambda: typer.echo(f"agency {out.id} registered"))


@agency_app.command("list")
def agency_list(as_json: JsonFlag = False) -> None:
    """List the agencies."""
    with reporting(as_json), hub_session(load_settings()) as session:
        rows = [dump(AgencyOut.model_validate(a)) for a in agencies.list_agencies(session)]

    def human() -> None:
        for row in rows:
            state = "active" if row["active"] else "inactive"
            typer.echo(f"{row['id']:<24} {row['kind']:<12} {row['jurisdiction']:<14} {state}")

    emit(rows, as_json=as_json, human=human)


@agency_app.command("update")
def agency_update(
    agency_id: str,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="New region-code prefix.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Allow or stop its keys.")
    ] = None,
    clearance: Annotated[
        str | None,
        typer.Option(
            help="Sensitivity classes it may receive, e.g. public,operational,identifying."
        ),
    ] = None,
    signing_key_approval: Annotated[
        bool | None,
        typer.Option(
            "--signing-key-approval/--no-signing-key-approval",
            help="New signing keys count only once a second admin key approves them.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an agency's name, jurisdiction, clearance, key approval or whether it is
    active."""
    with reporting(as_json):
        body = AgencyUpdate.model_validate(
            {
                "name": name,
                "jurisdiction": jurisdiction,
                "active": active,
                "clearance": None if clearance is None else clearance.split(","),
                "require_signing_key_approval": signing_key_approval,
            }
        )
        with hub_session(load_settings()) as session:
            out = AgencyOut.model_validate(
                agencies.update_agency(
                    session,
                    agency_id,
                    name=body.name,
                    jurisdiction=body.jurisdiction,
                    active=body.active,
                    require_signing_key_approval=body.require_signing_key_approval,
                    clearance=body.clearance,
                    actor=operator_actor(),
                )
            )
    emit(dump(out), as_json=as_json, human=lambda: typer.echo(f"agency {out.id} updated"))


@key_app.command("create")
def key_create(
    agency_id: str,
    scope: Annotated[
        list[Scope], typer.Option("--scope", help="Scope to grant; repeat for several.")
    ],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires_at: Annotated[
        datetime | None,
        typer.Option(help="Expiry, ISO 8601 with offset.", formats=["%Y-%m-%dT%H:%M:%S%z"]),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; its token is printed now and never again."""
    with reporting(as_json):
        body = ApiKeyCreate(scopes=[s.value for s in scope], label=label, expires_at=expires_at)
        with hub_session(load_settings()) as session:
            issued = agencies.create_api_key(
                session,
                agency_id=agency_id,
                scopes=[Scope(s) for s in body.scopes],
                label=body.label,
                expires_at=body.expires_at,
                actor=operator_actor(),
            )
            document = {**dump(api_key_out(issued.key)), "token": issued.token}
    emit(document, as_json=as_json, human=lambda: typer.echo(document["token"]))


@key_app.command("list")
def key_list(agency_id: str, as_json: JsonFlag = False) -> None:
    """List an agency's API keys (never their secrets)."""
    with reporting(as_json), hub_session(load_settings()) as session:
        rows = [dump(api_key_out(k)) for k in agencies.list_api_keys(session, agency_id=agency_id)]

    def human() -> None:
        for row in rows:
            state = "revoked" if row["revoked_at"] else "active"
            typer.echo(f"{row['id']}  {' '.join(row['scopes']):<24} {state}  {row['label']}")

    emit(rows, as_json=as_json, human=human)


@key_app.command("revoke")
def key_revoke(agency_id: str, key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke an API key at once."""
    with reporting(as_json), hub_session(load_settings()) as session:
        key = agencies.revoke_api_key(
            session, agency_id=agency_id, key_id=key_id, actor=operator_actor()
        )
        row = dump(api_key_out(key))
    emit(row, as_json=as_json, human=lambda: typer.echo(f"key {key_id} revoked"))


@signing_key_app.command("add")
def signing_key_add(
    agency_id: str,
    public_key: Annotated[
        str, typer.Argument(help="Ed25519 public key: 32 bytes in base64(url), or a PEM file.")
    ],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register an agency's Ed25519 public key."""
    if Path(public_key).is_file():
        public_key = Path(public_key).read_text(encoding="ascii")
    with reporting(as_json):
        body = SigningKeyCreate(public_key=public_key, label=label)
        with hub_session(load_settings()) as session:
            out = SigningKeyOut.model_validate(
                agencies.add_signing_key(
                    session,
                    agency_id=agency_id,
                    public_key=body.public_key,
                    label=body.label,
                    actor=operator_actor(),
                )
            )
    emit(dump(out), as_json=as_json, human=lambda: typer.echo(out.id))


@signing_key_app.command("list")
def signing_key_list(agency_id: str, as_json: JsonFlag = False) -> None:
    """List an agency's signing keys."""
    with reporting(as_json), hub_session(load_settings()) as session:
        rows = [
            dump(SigningKeyOut.model_validate(k))
            for k in agencies.list_signing_keys(session, agency_id=agency_id)
        ]

    def human() -> None:
        for row in rows:
            state = "revoked" if row["revoked_at"] else "active"
            typer.echo(f"{row['id']}  {state}  {row['label']}")

    emit(rows, as_json=as_json, human=human)


@signing_key_app.command("revoke")
def signing_key_revoke(agency_id: str, key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke a signing key."""
    with reporting(as_json), hub_session(load_settings()) as session:
        out = SigningKeyOut.model_validate(
            agencies.revoke_signing_key(
                session, agency_id=agency_id, key_id=key_id, actor=operator_actor()
            )
        )
    emit(dump(out), as_json=as_json, human=lambda: typer.echo(f"signing key {key_id} revoked"))
