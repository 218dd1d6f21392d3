"""The facts through a report's life: written at submission without a person in them, kept
when the report is purged, built by the backfill for reports accepted before; the outlines
imported and refused; the answer as GeoJSON; the command line."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlmodel import select
from typer.testing import CliRunner

from exchange.agencies.models import AgencyKind, Scope
from exchange.cli import app
from exchange.hub import Hub
from exchange.regions import service as regions
from exchange.statistics.models import StatFact, StatIndicator, StatPerson, StatTally
from tests.conftest import bearer, hub_admin_key, issue_key
from tests.delivery.conftest import WARNING, submit, subscribe
from tests.statistics.corpus import banten_directory


def _agencies(client: TestClient, hub: Hub) -> tuple[dict[str, str], dict[str, str]]:
    with hub.session() as session:
        regions.import_directory(session, lines=banten_directory(), actor="test")
    village = bearer(issue_key(hub, "desa-c", [Scope.submit], kind=AgencyKind.village))
    police = bearer(issue_key(hub, "polres-c", [Scope.receive], kind=AgencyKind.police))
    subscribe(client, police, types=["village-early-warning"])
    return village, police


def _every_value(hub: Hub) -> set[str]:
    with hub.session() as session:
        rows = [
            *session.exec(select(StatFact)),
            *session.exec(select(StatIndicator)),
            *session.exec(select(StatPerson)),
        ]
    return {str(value) for row in rows for value in row.model_dump().values()}


def test_the_facts_hold_no_person_and_outlive_the_purge(client: TestClient, hub: Hub) -> None:
    village, police = _agencies(client, hub)
    report_id = submit(client, village, WARNING)
    stored = _every_value(hub)
    person = WARNING["persons_at_risk"]["people"][0]
    for secret in (person["name"], person["nik"], person["phone"], WARNING["narrative"]):
        assert secret not in stored
        assert not any(secret in value for value in stored)
    with hub.session() as session:
        bands = {(p.age_band, p.gender): p.people for p in session.exec(select(StatPerson))}
    assert bands == {("25-34", "Female"): 1, ("12-17", "Female"): 1}
    before = client.get("/v1/stats?level=desa&within=36.03.11", headers=police).json()
    admin = bearer(hub_admin_key(hub))
    assert client.delete(f"/v1/reports/{report_id}", headers=admin).status_code == 200
    after = client.get("/v1/stats?level=desa&within=36.03.11", headers=police).json()
    assert after["total"]["reports"] == before["total"]["reports"] == 1
    assert after["total"]["people"] == WARNING["persons_at_risk"]["count"]


def test_the_backfill_counts_reports_accepted_before(
    client: TestClient, hub: Hub, runner: CliRunner
) -> None:
    village, police = _agencies(client, hub)
    kept = submit(client, village, WARNING)
    purged = submit(client, village, WARNING)
    admin = bearer(hub_admin_key(hub))
    assert client.delete(f"/v1/reports/{purged}", headers=admin).status_code == 200
    with hub.session() as session:  # as a hub that did not keep them yet
        for table in (StatFact, StatIndicator, StatPerson, StatTally):
            session.exec(delete(table))  # type: ignore[call-overload]
    nothing = client.get("/v1/stats?level=desa&within=36.03.11", headers=police).json()
    assert nothing["total"]["reports"] == 0
    done = runner.invoke(app, ["stats", "backfill", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {
        "counted": 1,
        "purged_without_facts": 1,
        "unknown_type": 0,
    }
    again = client.get("/v1/stats?level=desa&within=36.03.11", headers=police).json()
    assert again["total"]["reports"] == 1  # counted for the recipient too
    by_code = {row["code"]: row for row in again["regions"]}
    assert by_code["36.03.11.2009"]["reports"] == 1
    assert kept
    second = runner.invoke(app, ["stats", "backfill", "--json"])
    assert json.loads(second.output)["counted"] == 0  # nothing twice
    shown = runner.invoke(
        app, ["stats", "--agency", "polres-c", "--level", "desa", "--within", "36.03.11", "--csv"]
    )
    assert shown.exit_code == 0, shown.output
    assert "region,36.03.11.2009,Tanjakan Mekar,,1," in shown.output
    refused = runner.invoke(app, ["stats", "--level", "planet", "--agency", "polres-c", "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.output)["error"]["details"][0]["pointer"] == "/level"
    whose = runner.invoke(app, ["stats", "--json"])
    assert whose.exit_code == 1  # whose counts: an agency's or the public table
    assert json.loads(whose.output)["error"]["details"][0]["pointer"] == "/agency"


def test_outlines_import_add_and_refuse(hub: Hub, runner: CliRunner, tmp_path: Path) -> None:
    loaded = runner.invoke(app, ["regions", "boundaries", "--json"])
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["count"] == 1714
    other = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "32.01",
                "properties": {"name": "Kabupaten Bogor"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[106.5, -6.4], [107.0, -6.4], [107.0, -6.8], [106.5, -6.4]]],
                },
            }
        ],
    }
    file = tmp_path / "jawa-barat.geojson"
    file.write_text(json.dumps(other))
    added = runner.invoke(app, ["regions", "boundaries", str(file), "--json"])
    assert added.exit_code == 0, added.output
    with hub.session() as session:
        assert set(regions.boundaries_under(session, "32", length=5)) == {"32.01"}
        assert len(regions.boundaries_under(session, "36", length=13)) == 1551  # still there
    broken: list[tuple[object, str]] = [
        ({"type": "Topology"}, "/type"),
        (
            {"type": "FeatureCollection", "features": [{"id": "Bogor", "geometry": None}]},
            "/features/0/id",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"id": "32.01", "geometry": {"type": "Point", "coordinates": [106, -6]}}
                ],
            },
            "/features/0/geometry",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "id": "32.01",
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[500, -6], [501, -6], [501, -7], [500, -6]]],
                        },
                    }
                ],
            },
            "/features/0/geometry",
        ),
    ]
    polygon = other["features"][0]["geometry"]
    broken += [
        ([], "/type"),
        ("x", "/type"),
        ({"type": "FeatureCollection", "features": ["x"]}, "/features/0"),
        (
            {"type": "FeatureCollection", "features": [{"id": 32, "geometry": polygon}]},
            "/features/0/id",
        ),
        (
            {"type": "FeatureCollection", "features": [{"id": "3.201", "geometry": polygon}]},
            "/features/0/id",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"id": "32.01", "properties": [1], "geometry": polygon},
                    {"id": "32.01", "geometry": polygon},
                ],
            },
            "/features/1/id",
        ),
    ]
    for document, pointer in broken:
        file.write_text(json.dumps(document))
        refused = runner.invoke(app, ["regions", "boundaries", str(file), "--json"])
        assert refused.exit_code == 1, refused.output
        assert json.loads(refused.output)["error"]["details"][0]["pointer"] == pointer
    odd_mark = {
        "type": "FeatureCollection",
        "features": [
            {"id": "32.02", "properties": {"centroid": [True, 1e308]}, "geometry": polygon}
        ],
    }
    file.write_text(json.dumps(odd_mark))
    assert runner.invoke(app, ["regions", "boundaries", str(file)]).exit_code == 0
    with hub.session() as session:
        marked = regions.boundaries_under(session, "32", length=5)["32.02"]
    assert 106.5 <= marked.longitude <= 107.0  # worked out inside, not taken
    file.write_bytes(b"\xff not json")
    assert runner.invoke(app, ["regions", "boundaries", str(file)]).exit_code == 1


def test_the_answer_as_geojson(client: TestClient, hub: Hub) -> None:
    village, police = _agencies(client, hub)
    with hub.session() as session:
        regions.import_boundaries(
            session, data=regions.SHIPPED_BOUNDARIES.read_bytes(), actor="test"
        )
    submit(client, village, WARNING)
    answer = client.get("/v1/stats?level=desa&within=36.03.11&format=geojson", headers=police)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    document = answer.json()
    assert document["type"] == "FeatureCollection"
    features = {feature["id"]: feature for feature in document["features"]}
    assert features["36.03.11.2009"]["properties"]["reports"] == 1
    assert features["36.03.11.2009"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert document["properties"]["total"]["reports"] == 1
    plain = client.get("/v1/stats?level=desa&within=36.03.11", headers=police).json()
    assert len(features) == len(plain["regions"])


def test_days_outside_the_range_are_refused(client: TestClient, hub: Hub) -> None:
    _, police = _agencies(client, hub)
    for query, pointer in (
        ("from=0001-01-01", "/from"),
        ("to=9999-12-31", "/to"),
        ("public=true&from=0001-01-01&to=0001-12-31", "/from"),
    ):
        answer = client.get(f"/v1/stats?{query}", headers=police)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["error"]["details"][0]["pointer"] == pointer
