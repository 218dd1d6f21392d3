"""The field form in a real phone-sized browser (Playwright, Debian's Chromium, 360x740,
touch): every report type's valid example filled in through the form built from its schema
is stored exactly as the API stores it; errors land on their field in Indonesian; written
offline, reports wait in the encrypted outbox and are sent once each when the phone is back
online, even when the hub's first answer is lost; the page stays light."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from connectors.base import InboundMessage
from connectors.sms_gateway import SmsGatewayConfig, SmsGatewayIntake
from exchange.accounts import service as accounts
from exchange.accounts.models import Role
from exchange.agencies.models import Agency
from exchange.hub import Hub
from exchange.intake import service as intake
from exchange.regions import service as regions
from exchange.reports.models import Report
from tests.console.conftest import add_user, sign_in
from tests.console.test_browser import CHROMIUM, Visit, in_browser
from tests.console.test_pages import console
from tests.servers import serving, unavailable, wait_until

PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True}
EXAMPLES = sorted(Path(__file__).resolve().parents[2].glob("schemas/*/examples/valid/*.json"))
SENDER = "kanim-tangerang"  # immigration files every type but one kind's


@pytest.fixture
def field_hub(app: FastAPI, hub: Hub, demo: dict[str, dict[str, str]]) -> Any:
    """A live hub with the region directory loaded and an officer of an office cleared for
    every class of field (so that every example's fields are on the form)."""
    if CHROMIUM is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    with hub.session() as session:
        with regions.SHIPPED_DIRECTORY.open(encoding="utf-8", newline="") as lines:
            regions.import_directory(session, lines=lines, actor="test")
        agency = session.get(Agency, SENDER)
        assert agency is not None
        agency.clearance = "public operational identifying special"
        session.add(agency)
    officer = add_user(hub, SENDER, "rudi.kanim", Role.reporter)
    with serving(app) as url:
        yield url, officer


def as_instants(value: Any) -> Any:
    """The payload with its date-times as instants: the form writes WIB times as +07:00."""
    if isinstance(value, dict):
        return {k: as_instants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_instants(v) for v in value]
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


async def fill(page: Any, value: Any, pointer: str = "") -> None:
    """Type ``value`` into the form as a person would: each field found by its pointer."""
    if isinstance(value, dict):
        for name, child in value.items():
            await fill(page, child, f"{pointer}/{name}")
        return
    target = page.locator(f'[data-pointer="{pointer}"]').first
    if isinstance(value, list):
        if await target.evaluate("e => e.classList.contains('choices')"):
            for choice in value:
                await target.locator(f'input[value="{choice}"]').check()
            return
        add = page.locator(f'fieldset[data-pointer="{pointer}"] > button.add')
        for index, item in enumerate(value):
            await add.tap()
            await fill(page, item, f"{pointer}/{index}")
        return
    if await target.evaluate("e => e.classList.contains('region')"):
        # By name, level by level, where the picker has the region; else its code typed.
        selects = target.locator("select")
        if await selects.nth(0).locator(f'option[value="{value[:5]}"]').count() and len(value) >= 5:
            for position, length in enumerate((5, 8, 13)):
                if len(value) >= length:
                    await selects.nth(position).select_option(value[:length])
        else:
            await target.locator("input").fill(value)
        return
    tag = await target.evaluate("e => e.tagName + ':' + (e.type || '')")
    if tag.startswith("SELECT"):
        await target.select_option(json.dumps(value) if isinstance(value, bool) else str(value))
    elif tag == "INPUT:datetime-local":
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        local = moment.astimezone(datetime.fromisoformat("2000-01-01T00:00+07:00").tzinfo)
        await target.fill(local.strftime("%Y-%m-%dT%H:%M"))
    else:
        await target.fill(str(value))


async def open_form(
    browser: Any, hub_url: str, officer: Any, report_type: str = "village-early-warning"
) -> Visit:
    """A phone, signed in as ``officer``, on the form for ``report_type``, ready."""
    visit = await Visit.open(browser, hub_url, **PHONE)
    await visit.sign_in(officer)
    await visit.page.goto(f"/console/field?type={report_type}")
    await visit.page.wait_for_selector('#field[data-ready="true"]')
    return visit


def stored(hub_url: str, headers: dict[str, str], report_id: str) -> Any:
    answer = httpx.get(f"{hub_url}/v1/reports/{report_id}", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["payload"]


def test_every_report_type_through_the_phone_form_is_stored_as_the_api_stores_it(
    field_hub: Any, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    hub_url, officer = field_hub
    api = demo[SENDER]
    earlier = httpx.post(
        f"{hub_url}/v1/reports",
        json={"type": "village-early-warning", "payload": json.loads(EXAMPLES[-1].read_text())},
        headers=api,
        timeout=10,
    ).json()["id"]
    cases = []
    for path in EXAMPLES:
        report_type = path.parts[-4]
        payload = json.loads(path.read_text())
        if report_type == "case-update":
            payload["references"] = [earlier]  # a report the office may see
        if report_type == "victim-referral":
            payload["referring_agency"] = SENDER
        if hub.registry.get(report_type).submitters.isdisjoint({"immigration"}):
            continue
        by_api = httpx.post(
            f"{hub_url}/v1/reports",
            json={"type": report_type, "payload": payload, "recipients": ["polda-banten"]},
            headers=api,
            timeout=10,
        )
        assert by_api.status_code == 202, by_api.text
        cases.append((report_type, payload, by_api.json()["id"]))

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url, **PHONE)
        await visit.sign_in(officer)
        page = visit.page
        for report_type, payload, api_id in cases:
            await page.goto(f"/console/field?type={report_type}")
            await page.wait_for_selector('#field[data-ready="true"]')
            await fill(page, payload)
            await page.locator('[data-pointer="/recipients"] input[value="polda-banten"]').check()
            async with page.expect_response("**/console/field/reports") as answered:
                await page.get_by_role("button", name="Kirim laporan").tap()
            answer = await answered.value
            body = await answer.json()
            assert answer.status == 202, (report_type, body)
            form_payload = await asyncio.to_thread(stored, hub_url, api, body["id"])
            api_payload = await asyncio.to_thread(stored, hub_url, api, api_id)
            assert as_instants(form_payload) == as_instants(api_payload), report_type
        await page.goto("/console/field?type=village-early-warning")
        await page.wait_for_selector('#field[data-ready="true"]')
        await visit.shot("field", full_page=False)
        await visit.close(hub_url)

    in_browser(hub_url, journey)


def test_errors_land_on_their_field_in_indonesian(field_hub: Any) -> None:
    hub_url, officer = field_hub

    async def journey(browser: Any) -> None:
        visit = await open_form(browser, hub_url, officer)
        page = visit.page
        await page.locator('[data-pointer="/persons_at_risk/count"]').fill("-3")
        await page.get_by_role("button", name="Kirim laporan").tap()
        severity = page.locator('.field:has([data-pointer="/severity"]) .field-error')
        await severity.wait_for()
        assert "wajib" in (await severity.inner_text()).lower()
        count = page.locator('.field:has([data-pointer="/persons_at_risk/count"]) .field-error')
        assert (await count.inner_text()).strip()
        entry = page.locator("#outbox-list li.refused")
        assert await entry.count() == 1  # kept, to fix and send again
        await visit.close(hub_url)

    in_browser(hub_url, journey)


def test_written_offline_sent_once_each_when_back_online_even_when_an_answer_is_lost(
    field_hub: Any, hub: Hub
) -> None:
    hub_url, officer = field_hub
    minimal = json.loads(
        (
            Path(__file__).resolve().parents[2]
            / "schemas/village-early-warning/examples/valid/minimal.json"
        ).read_text()
    )

    def count() -> int:
        with hub.session() as session:
            return int(session.exec(select(func.count()).select_from(Report)).one())

    before = count()

    async def journey(browser: Any) -> None:
        visit = await open_form(browser, hub_url, officer)
        page = visit.page
        await visit.context.set_offline(True)
        pending = page.locator('#outbox-list li[data-state="pending"]')
        for written, narrative in enumerate(("Pertama", "Kedua")):
            await fill(page, {**minimal, "narrative": narrative})
            await page.get_by_role("button", name="Kirim laporan").tap()
            await pending.nth(written).wait_for()  # kept on the phone, waiting
        assert await page.locator("#form-status").inner_text() == (
            "Tidak ada sinyal: laporan disimpan di kotak keluar dan dikirim otomatis saat online."
        )
        assert await pending.count() == 2

        # The first answer is lost on its way back: the hub stored the report, the phone
        # never heard. It must send the same report again, and the hub answer as before.
        dropped: list[str] = []

        async def lose_first_answer(route: Any) -> None:
            if not dropped:
                await route.fetch()
                dropped.append(route.request.headers["idempotency-key"])
                await route.abort()
            else:
                await route.continue_()

        await page.route("**/console/field/reports", lose_first_answer)
        await visit.context.set_offline(False)
        await page.evaluate("window.dispatchEvent(new Event('online'))")
        # The lost answer leaves the first pending; the outbox tries again by itself.
        await page.locator('#outbox-list li[data-state="sent"]').nth(1).wait_for(timeout=15_000)
        answers = await page.locator("#outbox-list li .answer").all_inner_texts()
        assert len(answers) == 2
        assert all("ke: " in a for a in answers)  # where each went
        assert dropped
        await page.locator("#outbox").scroll_into_view_if_needed()
        await visit.shot("outbox", full_page=False)
        await visit.close(hub_url)

    in_browser(hub_url, journey)
    wait_until(lambda: count() == before + 2, what="two reports", deadline_s=10)
    with hub.session() as session:
        sent = session.exec(
            select(Report).where(col(Report.sender) == SENDER).order_by(col(Report.received_at))
        ).all()
    assert len(sent) == 2


def test_the_form_is_light_and_says_what_it_needs(
    app: FastAPI, client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    officer = add_user(hub, SENDER, "rudi.kanim", Role.reporter)
    with console(app) as browser:
        sign_in(browser, officer)
        weight = 0
        for path in (
            "/console/field",
            "/console/static/field.js",
            "/console/static/field.css",
            "/console/static/console.css",
            "/console/field/manifest.webmanifest",
        ):
            answer = browser.get(path)
            assert answer.status_code == 200, path
            weight += len(gzip.compress(answer.content))
        assert weight < 100_000, weight
        worker = browser.get("/console/field/sw.js")
        assert worker.headers["service-worker-allowed"] == "/console/field"
        bundle = browser.get("/console/field/bundle.json").json()
        assert {t["name"] for t in bundle["types"]} >= {"village-early-warning"}
        # A body the API would refuse is refused here as a 4xx, never a crash.
        csrf = browser.get("/console/field").text.split('data-csrf="')[1].split('"')[0]
        for body in ('{"type": 5}', '{"type": "x", "payload": "x"}', "[]", "{"):
            wrong = browser.post(
                "/console/field/reports",
                content=body,
                headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
            )
            assert 400 <= wrong.status_code < 500, (body, wrong.text)
        logout = browser.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
        assert logout.headers["clear-site-data"] == '"cache", "storage"'


def test_another_officer_on_the_same_phone_neither_sees_nor_sends_the_first_ones_reports(
    field_hub: Any, hub: Hub
) -> None:
    hub_url, officer = field_hub
    colleague = add_user(hub, "kanim-serang", "eko.kanim", Role.reporter)
    minimal = json.loads(EXAMPLES[-1].read_text())

    def sent_by(agency: str) -> int:
        with hub.session() as session:
            query = select(func.count()).select_from(Report).where(Report.sender == agency)
            return int(session.exec(query).one())

    async def journey(browser: Any) -> None:
        phone = await open_form(browser, hub_url, officer)
        page = phone.page
        await phone.context.set_offline(True)
        await fill(page, minimal)
        await page.get_by_role("button", name="Kirim laporan").tap()
        await page.locator('#outbox-list li[data-state="pending"]').wait_for()
        # The first officer's session lapses without a sign-out; the next signs in.
        await phone.context.clear_cookies()
        await phone.context.set_offline(False)
        await phone.sign_in(colleague)
        await page.goto("/console/field?type=village-early-warning")
        await page.wait_for_selector('#field[data-ready="true"]')
        assert await page.locator("#outbox-list li").count() == 0
        await phone.close(hub_url)

    in_browser(hub_url, journey)
    assert sent_by("kanim-serang") == 0
    assert sent_by(SENDER) == 0  # it waits, on the phone, for its own author


def test_the_officers_own_village_is_preselected(field_hub: Any, hub: Hub) -> None:
    hub_url, _ = field_hub
    village_officer = add_user(hub, "pimpasa-tanjakan-mekar", "sri.pimpasa", Role.reporter)

    async def journey(browser: Any) -> None:
        visit = await open_form(browser, hub_url, village_officer)
        page = visit.page
        picker = page.locator('[data-pointer="/village_code"] select')
        chosen = [await picker.nth(i).input_value() for i in range(3)]
        assert chosen == ["36.03", "36.03.11", "36.03.11.2009"]
        await visit.close(hub_url)

    in_browser(hub_url, journey)


def test_a_text_messages_draft_is_completed_in_the_form_in_a_browser(
    field_hub: Any, hub: Hub
) -> None:
    """An SMS the hub could not read whole (its severity) waits in its author's drafts; the
    officer opens it in the form, sees the problem on its field, completes it, sends it, and
    the draft leaves the list."""
    hub_url, _ = field_hub
    officer = add_user(hub, "pimpasa-tanjakan-mekar", "sri.pimpasa", Role.reporter)
    with hub.session() as session:
        user = accounts.get_user(session, officer.username)
        accounts.set_phone(session, user=user, phone="081234567890", actor="test")
        intake_row, secrets = intake.register(
            session,
            agency_id="pimpasa-tanjakan-mekar",
            plugin="sms-gateway",
            label="SMS",
            sealer=hub.keyring.sealer,
            actor="test",
        )
    config = SmsGatewayConfig(secret=secrets["secret"])
    message = InboundMessage("sms-1", "+6281234567890", "TPPO 36.03.11.2009 sangat calo 4 MY")
    headers, body = SmsGatewayIntake().signed_request([message], config)
    posted = httpx.post(f"{hub_url}/v1/intakes/{intake_row.id}", content=body, headers=headers)
    assert "Laporan belum terkirim" in posted.json()["replies"][0]["text"]

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url, **PHONE)
        await visit.sign_in(officer)
        page = visit.page
        await page.goto("/console/field/drafts")
        await page.locator("#drafts a").first.tap()
        await page.wait_for_selector('#field[data-ready="true"]')
        problem = page.locator('.field:has([data-pointer="/severity"]) .field-error')
        assert "sangat" in await problem.inner_text()
        await page.locator('[data-pointer="/severity"]').select_option("high")
        async with page.expect_response("**/console/field/reports") as answered:
            await page.get_by_role("button", name="Kirim laporan").tap()
        assert (await answered.value).status == 202
        await page.goto("/console/field/drafts")
        assert await page.locator("#drafts a").count() == 0
        await visit.close(hub_url)

    in_browser(hub_url, journey)
    with hub.session() as session:
        sent = session.exec(select(Report).where(Report.sender == "pimpasa-tanjakan-mekar")).all()
    assert len(sent) == 1
