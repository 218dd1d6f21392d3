"""``GET /v1/stats`` end to end: submissions and routing write the facts, each agency counts
what the visibility rule lets it read, CSV says what JSON says, bad queries are 4xx."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import AgencyKind, Scope
from exchange.hub import Hub
from exchange.regions import service as regions
from exchange.reports.models import Report
from exchange.reports.visibility import visible_to
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import WARNING, submit, subscribe
from tests.statistics.corpus import banten_directory


def test_each_agency_counts_what_it_may_read(client: TestClient, hub: Hub) -> None:
    with hub.session() as session:
        regions.import_directory(session, lines=banten_directory(), actor="test")
    village = bearer(
        issue_key(hub, "desa-a", [Scope.submit, Scope.receive], kind=AgencyKind.village)
    )
    police = bearer(
        issue_key(hub, "polres-a", [Scope.receive, Scope.submit], kind=AgencyKind.police)
    )
    other = bearer(issue_key(hub, "dinsos-a", [Scope.receive], kind=AgencyKind.social))
    subscribe(client, police, types=["village-early-warning"], regions=["36.03"])
    subscribe(client, other, types=["village-early-warning"], regions=["36.71"])
    for _ in range(3):
        submit(client, village)  # village 36.03.11.2009: routed to the police only
    expected = {"desa-a": 3, "polres-a": 3, "dinsos-a": 0}
    with hub.session() as session:
        for agency, count in expected.items():  # the visibility rule says the same
            assert len(session.exec(select(Report.id).where(visible_to(agency))).all()) == count
    for headers, agency in ((village, "desa-a"), (police, "polres-a"), (other, "dinsos-a")):
        answer = client.get("/v1/stats?level=desa&within=36.03.11", headers=headers)
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["total"]["reports"] == expected[agency]
        by_code = {row["code"]: row for row in document["regions"]}
        assert by_code["36.03.11.2009"]["reports"] == expected[agency]
        assert (
            by_code["36.03.11.2009"]["people"]
            == expected[agency] * WARNING["persons_at_risk"]["count"]
        )
        assert document["from"] <= document["to"]
    # The CSV is the JSON's table.
    table = client.get("/v1/stats?level=desa&within=36.03.11&format=csv", headers=police)
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    listed = {row["code"]: row for row in rows if row["scope"] == "region"}
    assert listed["36.03.11.2009"]["reports"] == "3"
    assert len(listed) == len(
        client.get("/v1/stats?level=desa&within=36.03.11", headers=police).json()["regions"]
    )


def test_bad_queries_say_what_and_where(client: TestClient, hub: Hub) -> None:
    headers = bearer(issue_key(hub, "polres-b", [Scope.receive], kind=AgencyKind.police))
    cases = {
        "/v1/stats?level=kabupaten&within=36.03": "/within",
        "/v1/stats?level=planet": "/level",
        "/v1/stats?public=true&type=victim-referral": "/type",
        "/v1/stats?public=true&from=2020-01-01&to=2020-06-30": "/from",
        "/v1/stats?from=2026-02-01&to=2026-01-01": "/from",
        "/v1/stats?type=no-such-type": "/type",
        "/v1/stats?within=36%00": "/within",
        "/v1/stats?within=%D9%A3%D9%A6": "/within",  # Arabic-Indic digits are not a code
    }
    for url, pointer in cases.items():
        answer = client.get(url, headers=headers)
        assert 400 <= answer.status_code < 500, (url, answer.text)
        pointers = [d.get("pointer") for d in answer.json()["error"].get("details", [])]
        assert any(p and p.endswith(pointer) for p in pointers), (url, answer.json())
    assert client.get("/v1/stats").status_code == 401
    # Counts are reading: a key that only submits gets the publishable table alone.
    submitter = bearer(issue_key(hub, "desa-b", [Scope.submit], kind=AgencyKind.village))
    assert client.get("/v1/stats", headers=submitter).status_code == 403
    last_year = client.get("/v1/stats?public=true", headers=submitter)
    assert last_year.status_code == 200, last_year.text
    assert last_year.json()["public"] is True
