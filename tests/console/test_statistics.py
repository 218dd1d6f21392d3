"""The map and statistics pages: the agency's counts drawn and tabled, drill-down links,
the trends and destinations, the exports (the CSV is the API's), and who may open them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from exchange.accounts.models import Role
from exchange.hub import Hub
from exchange.regions import service as regions
from tests.console.conftest import add_user, sign_in
from tests.delivery.conftest import WARNING, submit
from tests.statistics.corpus import banten_directory


def _banten(hub: Hub) -> None:
    with hub.session() as session:
        regions.import_directory(session, lines=banten_directory(), actor="test")
        regions.import_boundaries(
            session, data=regions.SHIPPED_BOUNDARIES.read_bytes(), actor="test"
        )


def test_the_map_counts_the_agencys_reports_and_drills_down(
    client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    _banten(hub)
    for _ in range(4):
        submit(client, demo["pimpasa-tanjakan-mekar"], WARNING)  # 36.03.11.2009
    officer = add_user(hub, "polres-tangerang", "analyst", Role.receiver)
    sign_in(client, officer)
    page = client.get("/console/statistics")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count('class="region"') == 8  # Banten's regencies, drawn
    # Tangerang's regency holds the four reports, and opens on its districts.
    tangerang = re.search(
        r'<a href="([^"]+)"><path class="region"[^>]*data-code="36\.03"[^>]*>', html
    )
    assert tangerang, html[:2000]
    assert 'data-reports="4"' in tangerang.group(0)
    district_page = client.get(tangerang.group(1).replace("&amp;", "&"))
    assert district_page.status_code == 200
    assert "Kabupaten Tangerang" in district_page.text
    assert district_page.text.count('class="region"') > 20  # its districts
    village_page = client.get("/console/statistics?within=36.03.11&level=desa")
    village = re.search(
        r'<path class="region"[^>]*data-code="36\.03\.11\.2009"[^>]*>', village_page.text
    )
    assert village
    assert 'data-reports="4"' in village.group(0)
    assert f'data-people="{4 * WARNING["persons_at_risk"]["count"]}"' in village.group(0)
    # The indicators' months and the destinations are there.
    assert 'id="trends"' in html
    assert 'id="destinations"' in html
    # The CSV is what the API answers the same agency for the same view.
    ours = client.get("/console/statistics.csv?within=36.03.11&level=desa")
    assert ours.status_code == 200
    api = client.get(
        "/v1/stats?within=36.03.11&level=desa&format=csv",
        headers={**demo["polres-tangerang"], "Accept-Language": "id"},  # the console's
    )
    assert ours.text == api.text
    drawing = client.get("/console/statistics.svg?within=36.03.11&level=desa")
    assert drawing.headers["content-type"].startswith("image/svg+xml")
    assert drawing.text.startswith("<?xml")
    assert "default-src 'none'" in drawing.headers["content-security-policy"]


def test_an_agency_that_sees_nothing_counts_nothing(
    client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    _banten(hub)
    submit(client, demo["pimpasa-tanjakan-mekar"], WARNING)
    officer = add_user(hub, "dinsos-banten", "social", Role.receiver)  # not routed to it
    sign_in(client, officer)
    html = client.get("/console/statistics?within=36.03.11&level=desa").text
    assert 'data-reports="1"' not in html
    assert re.search(r'data-code="36\.03\.11\.2009"[^>]*data-reports="0"', html)


def test_the_pages_need_the_receiver_role_and_good_parameters(
    client: TestClient, hub: Hub, demo: dict[str, dict[str, str]]
) -> None:
    _banten(hub)
    reporter = add_user(hub, "pimpasa-tanjakan-mekar", "officer", Role.reporter)
    sign_in(client, reporter)
    for path in ("/console/statistics", "/console/statistics.csv", "/console/statistics.svg"):
        assert client.get(path).status_code == 403
    client.cookies.clear()
    assert "/console/login" in str(client.get("/console/statistics").url)
    analyst = add_user(hub, "polda-banten", "analyst", Role.receiver)
    sign_in(client, analyst)
    refused = client.get("/console/statistics?level=kabupaten&within=36.03")
    assert refused.status_code == 422
    assert "/within" in refused.text
    assert client.get("/console/statistics?from=yesterday").status_code == 422
