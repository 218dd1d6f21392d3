"""The console in a real browser: Playwright driving Chromium from the Debian packages (never
a downloaded browser), against the hub on a loopback socket. Every request the browser
makes is recorded: none may go to another host. Screenshots of each page go to
docs/console/ when EXCHANGE_SCREENSHOTS is set.

Playwright's asyncio API, not its sync one: the sync API runs on greenlets, which leave
CPython 3.11.7's recursion accounting off for the rest of the test session (later tests
that parse source with ``ast`` then fail with "AST constructor recursion depth mismatch").
The hub runs once per test, on a real socket; reports are submitted to it over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlmodel import select, update

from exchange.accounts.models import ConsoleSession, Role
from exchange.audit.models import AuditEvent
from exchange.delivery.models import Delivery, DeliveryState
from exchange.hub import Hub
from tests.console.conftest import NEW_PASSWORD, Officer, add_user, integrated, state_of
from tests.delivery.conftest import example
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import serving, unavailable, wait_until

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
WARNING = example("village-early-warning", "calo-group-departure")


@pytest.fixture
def hub_url(app: FastAPI) -> Iterator[str]:
    if CHROMIUM is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    with serving(app) as url:
        yield url


def in_browser(base: str, journey: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``journey(browser)`` in a headless Chromium, on an event loop of its own."""

    async def run() -> None:
        async with playwright_api.async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                await journey(browser)
            finally:
                await browser.close()

    asyncio.run(run())


def submit(base: str, headers: dict[str, str]) -> str:
    answer = httpx.post(
        f"{base}/v1/reports",
        json={"type": "village-early-warning", "payload": WARNING, "tlp": "GREEN"},
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def delivered_to(hub: Hub, report_id: str, agency_id: str) -> list[str]:
    with hub.session() as session:
        return list(
            session.exec(
                select(Delivery.id).where(
                    Delivery.report_id == report_id,
                    Delivery.agency_id == agency_id,
                    Delivery.state == DeliveryState.delivered,
                )
            )
        )


class Visit:
    """One browser context (one person), recording every request it makes."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page
        self.hosts: set[str] = set()
        page.on("request", lambda r: self.hosts.add(urlsplit(r.url).netloc))
        page.set_default_timeout(10_000)

    @classmethod
    async def open(cls, browser: Any, base: str, **options: Any) -> Visit:
        context = await browser.new_context(base_url=base, locale="id-ID", **options)
        return cls(context, await context.new_page())

    async def shot(self, name: str, *, full_page: bool = True) -> None:
        if os.environ.get("EXCHANGE_SCREENSHOTS"):
            SCREENSHOTS.mkdir(exist_ok=True)
            path = str(SCREENSHOTS / f"{name}.png")
            await self.page.screenshot(path=path, full_page=full_page)

    async def sign_in(self, officer: Officer) -> None:
        page = self.page
        await page.goto("/console/login")
        await self.shot("login")
        await page.get_by_label("Nama pengguna").fill(officer.username)
        await page.get_by_label("Kata sandi").fill(officer.password)
        await page.get_by_role("button", name="Masuk").click()
        await page.wait_for_load_state()
        if "/console/password" in page.url:
            officer.password = NEW_PASSWORD
            await page.get_by_label("Kata sandi").fill(NEW_PASSWORD)
            await page.get_by_role("button", name="Simpan").click()
            await page.wait_for_load_state()
        if "/console/totp" in page.url:
            uri = page.locator("#totp-uri")
            if await uri.count():
                parsed: Any = pyotp.parse_uri(await uri.inner_text())
                officer.totp = parsed
            assert officer.totp is not None
            await page.get_by_label("Kode 6 digit").fill(officer.totp.now())
            await page.get_by_role("button", name="Verifikasi").click()
            await page.wait_for_load_state()
        assert "/console/login" not in page.url, await page.locator("main").inner_text()

    async def close(self, base: str) -> None:
        await self.context.close()
        assert self.hosts == {urlsplit(base).netloc}, self.hosts  # nothing from elsewhere


def test_the_desk_journey_in_a_browser(
    hub_url: str, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """Sign in with TOTP; a report submitted through the API appears on the desk within
    2 s without a reload; open it, acknowledge it; the sender sees the acknowledgement."""
    liaison = add_user(hub, "polres-tangerang", "joko.polres", Role.receiver)
    officer = add_user(hub, "pimpasa-tanjakan-mekar", "dewi.pimpasa", Role.reporter)

    async def journey(browser: Any) -> None:
        desk = await Visit.open(browser, hub_url)
        await desk.sign_in(liaison)
        page = desk.page
        await page.wait_for_url("**/console/desk")
        answer = await page.request.get("/console/desk")
        assert "script-src 'self'" in answer.headers["content-security-policy"]

        report_id = await asyncio.to_thread(submit, hub_url, demo["pimpasa-tanjakan-mekar"])
        started = time.monotonic()
        link = page.locator(f'a[href="/console/reports/{report_id}"]')
        await link.wait_for(timeout=4_000)
        shown_after = time.monotonic() - started
        # Delivery to the inbox and the desk's one-second poll: within the 2 s target.
        assert shown_after < 3.0, shown_after
        await desk.shot("desk")

        await link.click()
        await page.wait_for_url(f"**/console/reports/{report_id}")
        assert "Siti Aminah" in await page.content()  # Polres is cleared for identifying
        await desk.shot("report")
        await page.get_by_label("Catatan (tindak lanjut Anda)").fill("Tim turun ke desa")
        await page.get_by_role("button", name="Konfirmasi diterima").click()
        await page.wait_for_load_state()
        assert "dikonfirmasi oleh agency:polres-tangerang/user:" in await page.content()
        await desk.close(hub_url)

        mine = await Visit.open(browser, hub_url)
        await mine.sign_in(officer)
        await mine.page.goto("/console/sent")
        assert "polres-tangerang: Sudah dikonfirmasi" in await mine.page.content()
        await mine.shot("sent")
        await mine.close(hub_url)

    in_browser(hub_url, journey)


async def tab_to(page: Any, selector: str) -> None:
    """Press Tab until the element has the focus (it may have it already: autofocus), as
    someone without a mouse would; fail if Tab never reaches it."""
    target = page.locator(selector).first
    for _ in range(40):
        if await target.evaluate("element => element === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    pytest.fail(f"{selector} cannot be reached with Tab")


def test_the_desk_by_keyboard_alone(
    hub_url: str, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """Every step of the desk journey reachable with Tab and Enter, each control named."""
    submit(hub_url, demo["pimpasa-tanjakan-mekar"])
    liaison = add_user(hub, "disnakertrans-banten", "budi.disnaker", Role.receiver)

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url)
        page = visit.page
        await page.goto("/console/login")
        await tab_to(page, "#username")
        await page.keyboard.type(liaison.username)
        await page.keyboard.press("Tab")
        await page.keyboard.type(liaison.password)
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/password")
        await tab_to(page, "#password")
        await page.keyboard.type(NEW_PASSWORD)
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/desk")  # manpower reads nothing identifying
        await tab_to(page, "#desk tbody a")
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/reports/*")
        for field in await page.locator("input:not([type=hidden]), textarea, select").all():
            label = await field.evaluate(
                "e => e.labels && e.labels.length ? e.labels[0].innerText : ''"
            )
            assert label.strip(), await field.evaluate("e => e.outerHTML")
        await visit.close(hub_url)

    in_browser(hub_url, journey)


def test_the_auditor_verifies_a_reports_evidence_in_a_browser(
    hub_url: str, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """From the log, filtered to one report, to its evidence: every leaf hash and every step
    up to the signed root recomputed on the page, and the verdict."""
    integrated(hub)  # a first checkpoint, for the log's growth to be checked from
    report_id = submit(hub_url, demo["pimpasa-tanjakan-mekar"])
    integrated(hub)
    auditor = add_user(hub, "hub", "sari.itjen", Role.auditor)

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url)
        await visit.sign_in(auditor)
        page = visit.page
        await page.wait_for_url("**/console/audit")
        await visit.shot("audit", full_page=False)
        await page.get_by_label("Subjek").fill(f"report:{report_id}")
        await page.get_by_role("button", name="Saring").click()
        await page.wait_for_load_state()
        await page.locator("#events tbody a").first.click()
        await page.wait_for_url("**/console/audit/evidence?*")
        verdict = page.locator("#verdict")
        assert await verdict.get_attribute("class") == "ok"
        assert (await verdict.inner_text()).startswith("Terverifikasi")
        assert await page.locator("section.event.ok").count() >= 1
        assert await page.locator("section.event.error").count() == 0
        await visit.shot("evidence", full_page=False)
        await page.get_by_role("link", name="Checkpoint", exact=True).click()
        await page.wait_for_url("**/console/audit/checkpoints")
        await visit.shot("checkpoints")
        await page.locator("#checkpoints a").first.click()  # consistency with the latest
        await page.wait_for_url("**/console/audit/consistency?*")
        assert await page.locator("#verdict").get_attribute("class") == "ok"
        assert (await page.locator("#verdict").inner_text()).startswith("Terverifikasi")
        await visit.close(hub_url)

    in_browser(hub_url, journey)


def test_the_admin_replays_a_dead_delivery_in_a_browser(
    hub_url: str, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """A delivery that died is on the agency's page; one click sends it again, and it
    arrives."""
    report_id = submit(hub_url, demo["pimpasa-tanjakan-mekar"])
    wait_until(
        lambda: bool(delivered_to(hub, report_id, "polres-tangerang")),
        what="delivered",
        deadline_s=30,
    )
    dead = delivered_to(hub, report_id, "polres-tangerang")[0]
    with hub.session() as session:
        row = session.get(Delivery, dead)
        assert row is not None
        row.state = DeliveryState.dead
        session.add(row)
    admin = add_user(hub, "hub", "adi.operator", Role.hub_admin)

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url)
        await visit.sign_in(admin)
        page = visit.page
        await page.wait_for_url("**/console/admin")
        await visit.shot("admin")
        await page.get_by_role("link", name="Kepolisian Resor Kota Tangerang").click()
        await page.wait_for_url("**/console/admin/agencies/polres-tangerang")
        row = page.locator(f"#dead-{dead}")
        assert await row.count() == 1
        await visit.shot("agency")
        await row.get_by_role("button", name="Kirim ulang").click()
        await page.wait_for_load_state()
        await page.goto("/console/admin/hub")
        await visit.shot("hub")
        await visit.close(hub_url)

    in_browser(hub_url, journey)
    wait_until(
        lambda: state_of(hub, dead) == DeliveryState.delivered, what="replayed", deadline_s=30
    )


def test_the_refusals_in_a_browser(hub_url: str, hub: Hub, demo: dict[str, dict[str, str]]) -> None:
    """Another agency's report is 'not found'; a form without its CSRF token does nothing;
    a session id is dead after sign-out; a receiver without its second factor opens nothing."""
    report_id = submit(hub_url, demo["pimpasa-tanjakan-mekar"])
    outsider = add_user(hub, "kanim-serang", "eko.kanim", Role.receiver)
    halfway = add_user(hub, "polres-tangerang", "tono.polres", Role.receiver)

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url)
        await visit.sign_in(outsider)
        page = visit.page
        answer = await page.goto(f"/console/reports/{report_id}")
        assert answer is not None
        assert answer.status == 404
        forged = await page.request.post(
            f"/console/reports/{report_id}/ack", form={"note": "no token"}
        )
        assert forged.status in {403, 422}
        cookies = await visit.context.cookies()
        await page.goto("/console/desk")
        await page.get_by_role("button", name="Keluar").click()
        await page.wait_for_url("**/console/login")
        await visit.close(hub_url)

        thief = await Visit.open(browser, hub_url)
        await thief.context.add_cookies(cookies)  # the old session id, replayed
        await thief.page.goto("/console/desk")
        assert thief.page.url.endswith("/console/login")
        await thief.close(hub_url)

        started = await Visit.open(browser, hub_url)
        page = started.page
        await page.goto("/console/login")
        await page.get_by_label("Nama pengguna").fill(halfway.username)
        await page.get_by_label("Kata sandi").fill(halfway.password)
        await page.get_by_role("button", name="Masuk").click()
        await page.wait_for_url("**/console/password")
        await page.get_by_label("Kata sandi").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Simpan").click()
        await page.wait_for_url("**/console/totp")
        await page.goto(f"/console/reports/{report_id}")  # no code typed
        assert page.url.endswith("/console/totp")
        assert "Siti Aminah" not in await page.content()
        await started.close(hub_url)

    in_browser(hub_url, journey)
    with hub.session() as session:
        refused = session.exec(
            select(AuditEvent).where(AuditEvent.action == "report.read_refused")
        ).all()
    assert [json.loads(e.canonical)["subject"] for e in refused] == [f"report:{report_id}"]


def test_the_admin_subscribes_a_webhook_tests_it_and_confirms_a_key_in_a_browser(
    hub_url: str, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    """A webhook subscription from the connector's own form, its secret shown once, a test
    send over HTTP on loopback; then, past the confirmation window, a key issued only once
    a fresh code is typed."""
    admin = add_user(hub, "hub", "adi.operator", Role.hub_admin)

    async def journey(browser: Any, receiver: Receiver) -> None:
        visit = await Visit.open(browser, hub_url)
        await visit.sign_in(admin)
        page = visit.page
        await page.goto("/console/admin/agencies/bp3mi-banten")
        await page.get_by_role("link", name="webhook").click()
        await page.wait_for_url("**/subscriptions/new?connector=webhook")
        await page.get_by_label("Label").fill("Sistem kasus")
        await page.get_by_label("Url *").fill(receiver.url)
        await page.get_by_role("button", name="Buat").click()
        await page.wait_for_load_state()
        secret = await page.locator("#secret").inner_text()
        assert secret.startswith("whsec_")
        receiver.secret = secret
        await page.get_by_role("link", name="Kembali ke konsol").click()
        row = page.locator("#subscriptions tr", has_text="Sistem kasus")
        await row.get_by_role("button", name="Uji kirim").click()
        await page.wait_for_load_state()
        assert await page.locator("#verdict").get_attribute("class") == "ok"
        assert len(receiver.accepted) == 1  # signed, verified by the receiver, accepted

        with hub.session() as session:
            session.exec(update(ConsoleSession).values(confirmed_until=None))
        await page.goto("/console/admin/agencies/bp3mi-banten")
        await page.get_by_label("Label", exact=True).last.fill("SIAP BP3MI")
        await page.locator('#keys input[value="receive"]').check()
        await page.get_by_role("button", name="Terbitkan kunci").click()
        await page.wait_for_load_state()
        assert "/keys" in page.url
        await page.get_by_label("Kode 6 digit").fill(admin.totp.at(time.time() + 30))
        await page.get_by_role("button", name="Verifikasi").click()
        await page.wait_for_load_state()
        assert (await page.locator("#secret").inner_text()).startswith("exk_")
        await visit.close(hub_url)

    with running_receiver(Receiver()) as receiver:
        in_browser(hub_url, lambda browser: journey(browser, receiver))
