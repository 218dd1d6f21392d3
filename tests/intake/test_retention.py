"""What ends: a draft left unfinished for a month loses its content at `exchange purge
--expired`; a number taken from a user (`exchange user phone`) stops speaking for it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select, update
from typer.testing import CliRunner

from exchange.cli import app as cli
from exchange.hub import Hub
from exchange.intake.models import FieldDraft
from tests.intake.conftest import Gateway
from tests.intake.test_gateway import OFFICER, post


def run(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_an_unfinished_draft_is_destroyed_after_a_month(
    client: TestClient, hub: Hub, gateway: Gateway, runner: CliRunner
) -> None:
    post(client, gateway, ("m-20", OFFICER, "TPPO 36.03.11.2009 sangat calo 5 MY"))
    post(client, gateway, ("m-21", OFFICER, "TPPO 36.03.11.2009 sangat calo 6 MY"))
    with hub.session() as session:
        old, fresh = session.exec(select(FieldDraft).order_by(FieldDraft.message_id)).all()
        session.exec(
            update(FieldDraft)
            .where(FieldDraft.id == old.id)
            .values(created_at=old.created_at - timedelta(days=31))
        )
    assert run(runner, "purge", "--expired")["drafts_expired"] == 1
    with hub.session() as session:
        kept = {d.id: d for d in session.exec(select(FieldDraft)).all()}
    assert kept[old.id].closed_at is not None
    assert kept[old.id].content_sealed == b""
    assert kept[fresh.id].closed_at is None


def test_a_cleared_number_no_longer_reports(
    client: TestClient, hub: Hub, gateway: Gateway, runner: CliRunner
) -> None:
    assert run(runner, "user", "phone", "dewi.pimpasa")["phone"] is None
    answer = post(client, gateway, ("m-22", OFFICER, "TPPO 36.03.11.2009 TINGGI calo 5 MY"))
    assert "tidak terdaftar" in answer["replies"][0]["text"]
    assert run(runner, "user", "phone", "dewi.pimpasa", "0812 3456 7890")["phone"] == OFFICER
