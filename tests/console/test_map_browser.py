"""The map in a real browser (the console's Playwright setup, Debian's Chromium): it
renders, a tap shows a region's counts, drill-down opens a regency's districts and a
district's villages, and the CSV and PNG exports download (the CSV equal to the API's).
The data: 3,000 generated reports over the last nine months, with a cluster planted in
three villages in the last fortnight; the screenshots in docs/console/ come from it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from exchange.accounts.models import Role
from exchange.hub import Hub
from exchange.models import utcnow
from exchange.regions import service as regions
from exchange.statistics.facts import WIB
from tests.console.conftest import add_user
from tests.console.test_browser import Visit, hub_url, in_browser
from tests.statistics.corpus import banten_directory, generate, load, planted

__all__ = ["hub_url"]  # the fixture, used by the tests below

CLUSTER = ["36.03.11.2009", "36.03.11.2008", "36.03.12.2001"]


def _picture(hub: Hub) -> None:
    with hub.session() as session:
        regions.import_directory(session, lines=banten_directory(), actor="test")
        regions.import_boundaries(
            session, data=regions.SHIPPED_BOUNDARIES.read_bytes(), actor="test"
        )
    today = utcnow().astimezone(WIB).date()
    corpus = generate(3000, seed=21, start=today - timedelta(days=270), days=271)
    corpus += planted(
        CLUSTER,
        per_village=9,
        start=today - timedelta(days=13),
        days=14,
        reader="polda-banten",
        seed=22,
    )
    load(hub, corpus)


def _api_key(hub: Hub) -> dict[str, str]:
    from exchange.agencies.models import Scope
    from tests.conftest import bearer, issue_key

    return bearer(issue_key(hub, "polda-banten", [Scope.receive]))


def test_the_map_in_a_browser(app: FastAPI, hub: Hub, hub_url: str) -> None:
    _picture(hub)
    analyst = add_user(hub, "polda-banten", "analyst", Role.receiver)
    api = {**_api_key(hub), "Accept-Language": "id"}

    def figure(**query: str) -> dict[str, Any]:
        answer = httpx.get(f"{hub_url}/v1/stats", params=query, headers=api, timeout=10)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document

    async def journey(browser: Any) -> None:
        visit = await Visit.open(browser, hub_url, viewport={"width": 1280, "height": 900})
        page = visit.page
        await visit.sign_in(analyst)
        await page.goto("/console/statistics")
        regencies = page.locator("svg.choropleth path.region")
        assert await regencies.count() == 8
        await visit.shot("statistics")
        # A tap on Kabupaten Tangerang shows its counts, as the API gives them.
        expected = {row["code"]: row for row in figure(level="kabupaten")["regions"]}
        await page.locator('path.region[data-code="36.03"]').click()
        details = page.locator("#region-details")
        await details.wait_for(state="visible")
        assert await page.locator("#details-reports").inner_text() == str(
            expected["36.03"]["reports"]
        )
        # Drill down: the panel's link opens the regency's districts, then a district's
        # villages; a tap on a village of the cluster shows it as a hotspot.
        await page.locator("#details-open").click()
        await page.wait_for_url("**within=36.03**")
        assert await page.locator("svg.choropleth path.region").count() > 20
        await page.locator('path.region[data-code="36.03.11"]').click()
        await page.locator("#details-open").click()
        await page.wait_for_url("**within=36.03.11**")
        villages = {row["code"]: row for row in figure(level="desa", within="36.03.11")["regions"]}
        await page.locator('path.region[data-code="36.03.11.2009"]').click()
        assert await page.locator("#details-reports").inner_text() == str(
            villages["36.03.11.2009"]["reports"]
        )
        assert villages["36.03.11.2009"]["hotspot"]["flagged"]
        assert await page.locator("#details-hotspot").is_visible()
        await visit.shot("statistics-district")
        # The table's CSV, downloaded, is the API's answer.
        async with page.expect_download() as started:
            await page.locator("#export-csv").click()
        download = await started.value
        with open(await download.path(), encoding="utf-8") as saved:
            ours = saved.read()
        theirs = httpx.get(
            f"{hub_url}/v1/stats",
            params={"level": "desa", "within": "36.03.11", "format": "csv"},
            headers=api,
            timeout=10,
        ).text
        assert ours == theirs
        assert len(list(csv.DictReader(io.StringIO(ours)))) > 10
        async with page.expect_download() as started:
            await page.locator("#export-png").click()
        png = await started.value
        with open(await png.path(), "rb") as saved:
            assert saved.read(8) == b"\x89PNG\r\n\x1a\n"
        # Every village of Banten at once, for the documentation.
        await page.goto("/console/statistics?level=desa&within=36")
        assert await page.locator("svg.choropleth path.region").count() == 1551
        await visit.shot("statistics-villages", full_page=False)
        await visit.close(hub_url)

    in_browser(hub_url, journey)
