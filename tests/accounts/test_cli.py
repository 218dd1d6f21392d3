"""``exchange user``: add (the one-time password printed once), list (never a secret),
disable, reset and totp, each audited under the operator."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from exchange.cli import app as cli


def run(runner: CliRunner, *args: str, exit_code: int = 0) -> Any:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_user_commands_round_trip(runner: CliRunner) -> None:
    run(runner, "init", "--demo")
    added = run(
        runner,
        "user",
        "add",
        "polda-banten",
        "siti.rahayu",
        "--name",
        "Siti Rahayu",
        "--role",
        "receiver",
        "--role",
        "reporter",
    )
    assert added["roles"] == ["receiver", "reporter"]
    assert len(added["one_time_password"]) >= 12
    listed = run(runner, "user", "list", "--agency", "polda-banten")
    # The demo's own user, and the one added.
    assert [u["username"] for u in listed] == ["petugas.polda-banten", "siti.rahayu"]
    assert added["one_time_password"] not in json.dumps(listed)
    assert not {"password_hash", "totp_sealed", "one_time_password"} & set(listed[1])
    reset = run(runner, "user", "reset", "siti.rahayu")
    assert reset["reset_link"].startswith("/console/reset/")
    assert run(runner, "user", "totp", "siti.rahayu")["second_factor"] is False
    assert run(runner, "user", "disable", "siti.rahayu")["ended_sessions"] == 0
    by_name = {u["username"]: u for u in run(runner, "user", "list")}
    assert by_name["siti.rahayu"]["disabled"] is True
    assert by_name["petugas.polda-banten"]["disabled"] is False
    taken = run(
        runner,
        "user",
        "add",
        "polda-banten",
        "siti.rahayu",
        "--name",
        "X",
        "--role",
        "receiver",
        exit_code=1,
    )
    assert taken["error"]["code"] == "username_taken"
    not_operator = run(
        runner,
        "user",
        "add",
        "polda-banten",
        "budi.admin",
        "--name",
        "Budi",
        "--role",
        "hub-admin",
        exit_code=1,
    )
    assert not_operator["error"]["details"][0]["pointer"] == "/roles"
