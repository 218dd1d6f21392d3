"""``exchange user``: console users, from the operator's shell (acting as the operator:
every change is audited under the operator's login)."""

from __future__ import annotations

from typing import Annotated

import typer

from exchange.accounts import service as accounts
from exchange.accounts.contracts import UserOut
from exchange.accounts.models import Role
from exchange.agencies import service as agencies
from exchange.audit.service import operator_actor
from exchange.commandline import JsonFlag, dump, emit, load_settings, reporting, running_hub
from exchange.models import utcnow

user_app = typer.Typer(help="Console users: named officers of the agencies.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    agency_id: Annotated[str, typer.Argument(help="The user's agency, e.g. polda-banten.")],
    username: Annotated[str, typer.Argument(help="Sign-in name, e.g. siti.rahayu.")],
    name: Annotated[str, typer.Option(help="Full name, shown in the console and the log.")],
    role: Annotated[list[Role], typer.Option(help="A role; repeat for several.")],
    phone: Annotated[
        str | None,
        typer.Option(help="The user's phone, for reporting by text message (0812..., +62...)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a user and print its one-time password, once: it must choose its own at first
    sign-in (and enrol an authenticator where its roles require one)."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        user, password = accounts.create_user(
            session,
            agency=agencies.get_agency(session, agency_id),
            username=username,
            display_name=name,
            roles=frozenset(role),
            actor=operator_actor(),
            phone=phone,
        )
        out = {**dump(UserOut.of(user)), "one_time_password": password}
    emit(
        out,
        as_json=as_json,
        human=lambda: typer.echo(f"user {out['username']}: one-time password {password}"),
    )


@user_app.command("list")
def user_list(
    agency_id: Annotated[str | None, typer.Option("--agency", help="Only this agency's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List users (never their secrets)."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        rows = [dump(UserOut.of(u)) for u in accounts.list_users(session, agency_id=agency_id)]

    def human() -> None:
        for row in rows:
            state = "disabled" if row["disabled"] else ("totp" if row["second_factor"] else "")
            typer.echo(
                f"{row['username']:<24} {row['agency_id']:<24} {' '.join(row['roles']):<28} {state}"
            )

    emit(rows, as_json=as_json, human=human)


@user_app.command("disable")
def user_disable(username: str, as_json: JsonFlag = False) -> None:
    """Stop a user at once: every one of its sessions ends."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        user = accounts.get_user(session, username)
        ended = accounts.disable_user(session, user=user, actor=operator_actor(), now=utcnow())
    emit(
        {"username": username, "ended_sessions": ended},
        as_json=as_json,
        human=lambda: typer.echo(f"user {username} disabled; {ended} session(s) ended"),
    )


@user_app.command("reset")
def user_reset(username: str, as_json: JsonFlag = False) -> None:
    """Issue a one-time password-reset link (valid 24 hours) and end the user's sessions."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        user = accounts.get_user(session, username)
        token = accounts.issue_reset(session, user=user, actor=operator_actor(), now=utcnow())
    link = f"/console/reset/{token}"
    emit(
        {"username": username, "reset_link": link},
        as_json=as_json,
        human=lambda: typer.echo(f"reset link for {username} (once, 24 h): {link}"),
    )


@user_app.command("phone")
def user_phone(
    username: str,
    phone: Annotated[
        str | None, typer.Argument(help="The new number; leave out to clear it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set or clear the number a user reports by text message from."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        user = accounts.get_user(session, username)
        accounts.set_phone(session, user=user, phone=phone, actor=operator_actor())
        shown = user.phone
    emit(
        {"username": username, "phone": shown},
        as_json=as_json,
        human=lambda: typer.echo(f"user {username}: phone {shown or 'cleared'}"),
    )


@user_app.command("totp")
def user_totp(username: str, as_json: JsonFlag = False) -> None:
    """Forget a user's authenticator (a lost phone): it enrols a new one at next sign-in."""
    with reporting(as_json), running_hub(load_settings()) as hub, hub.session() as session:
        user = accounts.get_user(session, username)
        accounts.reset_totp(session, user=user, actor=operator_actor(), now=utcnow())
    emit(
        {"username": username, "second_factor": False},
        as_json=as_json,
        human=lambda: typer.echo(f"user {username} enrols a new authenticator at next sign-in"),
    )
