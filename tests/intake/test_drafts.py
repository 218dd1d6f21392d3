"""A text message the hub could not read whole waits as a draft in its author's console,
opens in the field form, and leaves the list once the report it becomes is sent; no one
else can open it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from exchange.accounts.models import Role
from exchange.hub import Hub
from exchange.intake import service
from tests.console.conftest import add_user, sign_in
from tests.console.test_pages import console
from tests.intake.conftest import Gateway
from tests.intake.test_gateway import OFFICER, post


def test_a_draft_is_completed_in_the_console_and_only_by_its_author(
    app: FastAPI, client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    post(client, gateway, ("m-7", OFFICER, "TPPO 36.03.11.2009 sangat calo 5 MY Malam ini"))
    with hub.session() as session:
        draft = session.exec(service.select_open_drafts()).one()
    with console(app) as browser:
        sign_in(browser, gateway.officer)
        listed = browser.get("/console/field/drafts")
        assert listed.status_code == 200
        assert f"/console/field?draft={draft.id}" in listed.text
        assert "TPPO 36.03.11.2009 sangat calo 5 MY Malam ini" in listed.text
        opened = browser.get(f"/console/field/drafts/{draft.id}.json").json()
        assert opened["type"] == "village-early-warning"
        assert [p["pointer"] for p in opened["problems"]] == ["/severity"]
        # Completed and sent from the form: the report, and the draft gone from the list.
        payload = {**opened["payload"], "severity": "high"}
        page = browser.get("/console/field")
        csrf = page.text.split('data-csrf="')[1].split('"')[0]
        sent = browser.post(
            "/console/field/reports",
            json={"type": opened["type"], "payload": payload, "draft": draft.id},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": "draft-m-7"},
        )
        assert sent.status_code == 202, sent.text
        assert draft.id not in browser.get("/console/field/drafts").text
        forged = browser.post(
            "/console/field/reports",
            json={"type": opened["type"], "payload": payload},
            headers={"Idempotency-Key": "no-token"},
        )
        assert forged.status_code == 403
    neighbour = add_user(hub, "pimpasa-tanjakan-mekar", "budi.pimpasa", Role.reporter)
    with console(app) as browser:
        sign_in(browser, neighbour)
        assert browser.get(f"/console/field/drafts/{draft.id}.json").status_code == 404
        assert draft.id not in browser.get("/console/field/drafts").text
