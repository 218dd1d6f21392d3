"""``exchange agency``: agencies, their API keys and their signing keys, from the operator's
shell (acting as the operator: every change is audited under the operator's login)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from exchange.agencies import service as agencies
from exchange.agencies.contracts import (
    AgencyCreate,
    AgencyOut,
    AgencyUpdate,
    ApiKeyCreate,
    ApiKeyOut,
    SigningKeyCreate,
    SigningKeyOut,
)
from exchange.agencies.models import AgencyKind, Scope
from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, dump, emit, hub_session, load_settings, reporting

agency_app = typer.Typer(help="Agencies and their credentials.", no_args_is_help=True)
key_app = typer.Typer(help="API keys of an agency.", no_args_is_help=True)
signing_key_app = typer.Typer(help="Ed25519 public keys of an agency.", no_args_is_help=True)
agency_app.add_typer(key_app, name="key")
agency_app.add_typer(signing_key_app, name="signing-key")


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
            out = AgencyOut.of(
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
        rows = [dump(AgencyOut.of(a)) for a in agencies.list_agencies(session)]

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
            out = AgencyOut.of(
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
            document = {**dump(ApiKeyOut.of(issued.key)), "token": issued.token}
    emit(document, as_json=as_json, human=lambda: typer.echo(document["token"]))


@key_app.command("list")
def key_list(agency_id: str, as_json: JsonFlag = False) -> None:
    """List an agency's API keys (never their secrets)."""
    with reporting(as_json), hub_session(load_settings()) as session:
        rows = [dump(ApiKeyOut.of(k)) for k in agencies.list_api_keys(session, agency_id=agency_id)]

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
        row = dump(ApiKeyOut.of(key))
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
            out = SigningKeyOut.of(
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
            dump(SigningKeyOut.of(k))
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
        out = SigningKeyOut.of(
            agencies.revoke_signing_key(
                session, agency_id=agency_id, key_id=key_id, actor=operator_actor()
            )
        )
    emit(dump(out), as_json=as_json, human=lambda: typer.echo(f"signing key {key_id} revoked"))
