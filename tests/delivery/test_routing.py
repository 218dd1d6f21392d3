"""Routing: every filter alone and combined, checked for every (subscription, report)
pair, and TLP 2.0 enforced whatever a subscription asks for, in routing and in reads."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from exchange.agencies.models import AgencyKind, Scope
from exchange.hub import Hub
from exchange.routing.models import Subscription
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import deliveries, example, submit, subscribe, warning

SEVERITIES = ["low", "medium", "high", "critical"]


@dataclass(frozen=True)
class Filters:
    types: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    min_severity: str | None = None
    indicators: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "regions": list(self.regions),
            "min_severity": self.min_severity,
            "indicators": list(self.indicators),
        }


@dataclass(frozen=True)
class Sent:
    type: str
    regions: tuple[str, ...]
    severity: str
    indicators: frozenset[str]


def region_match(prefix: str, code: str) -> bool:
    a, b = prefix.split("."), code.split(".")
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def should_receive(filters: Filters, report: Sent) -> bool:
    """The specification, written out independently of the hub's code."""
    return (
        (not filters.types or report.type in filters.types)
        and (
            not filters.regions
            or any(region_match(p, c) for p in filters.regions for c in report.regions)
        )
        and (
            filters.min_severity is None
            or SEVERITIES.index(report.severity) >= SEVERITIES.index(filters.min_severity)
        )
        and (not filters.indicators or bool(report.indicators & set(filters.indicators)))
    )


SUBSCRIPTIONS = {
    "everything": Filters(),
    "by-type": Filters(types=("recruitment-actor-alert",)),
    "by-district": Filters(regions=("36.03",)),
    "by-village": Filters(regions=("36.03.11.2009",)),
    "by-province-elsewhere": Filters(regions=("35",)),
    "by-severity": Filters(min_severity="high"),
    "by-indicator": Filters(indicators=("minor_involved", "fee_or_debt")),
    "combined": Filters(
        types=("village-early-warning",),
        regions=("36.01", "36.03"),
        min_severity="medium",
        indicators=("calo_recruiting",),
    ),
}


def test_routing_matrix(client: TestClient, hub: Hub) -> None:
    submitter = bearer(issue_key(hub, "kanim-serang", [Scope.submit], kind=AgencyKind.immigration))
    owners: dict[str, str] = {}
    for name, filters in SUBSCRIPTIONS.items():
        headers = bearer(issue_key(hub, f"rx-{name}", [Scope.receive], jurisdiction="36"))
        owners[subscribe(client, headers, **filters.body())["id"]] = name

    sent: dict[str, Sent] = {}
    villages = ["36.03.11.2009", "36.03.12.2001", "36.01.02.2001"]
    # Where the people at risk live, and where their NIKs were issued: regions the report
    # concerns besides the village that reports it.
    homes = [(), ("36.03.11.2009", "3603114505950001"), ("35.01.01.2001", "3601024505950001")]
    indicator_sets = [["calo_recruiting"], ["minor_involved", "group_departure"], ["no_contract"]]
    for code, home, severity, indicators in itertools.product(
        villages, homes, SEVERITIES, indicator_sets
    ):
        people = [{"home_region": home[0], "nik": home[1]}] if home else []
        payload = warning(
            village_code=code,
            severity=severity,
            indicators=indicators,
            persons_at_risk={"count": len(people), "people": people},
        )
        report_id = submit(client, submitter, payload, tlp="GREEN", allow_no_recipient=True)
        nik_district = (f"{home[1][0:2]}.{home[1][2:4]}.{home[1][4:6]}",) if home else ()
        concerned = (code, *home[:1], *nik_district)
        sent[report_id] = Sent("village-early-warning", concerned, severity, frozenset(indicators))
    alert = example("recruitment-actor-alert", "unlicensed-agency")
    response = client.post(
        "/v1/reports",
        json={"type": "recruitment-actor-alert", "payload": alert, "allow_no_recipient": True},
        headers=submitter,
    )
    assert response.status_code == 202, response.text
    sent[response.json()["id"]] = Sent(
        "recruitment-actor-alert",
        tuple(alert["area_of_operation"]),
        alert["severity"],
        frozenset(),
    )

    routed = {(d.subscription_id, d.report_id) for d in deliveries(hub)}
    mistakes = [
        (owners[subscription], report_id, sent[report_id])
        for subscription, report_id in itertools.product(owners, sent)
        if ((subscription, report_id) in routed)
        != should_receive(SUBSCRIPTIONS[owners[subscription]], sent[report_id])
    ]
    assert mistakes == []
    by_name = {name: {r for s, r in routed if owners[s] == name} for name in SUBSCRIPTIONS}
    assert len(by_name["everything"]) == len(sent)
    # East Java's subscription gets only the reports about people who live there.
    assert all(0 < len(by_name[name]) < len(sent) for name in SUBSCRIPTIONS if name != "everything")


MARKINGS = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]


@pytest.mark.parametrize("marking", MARKINGS)
@pytest.mark.parametrize("named", [(), ("polda-banten",), ("polda-jatim",)])
def test_tlp_matrix(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    jatim: dict[str, str],
    marking: str,
    named: tuple[str, ...],
) -> None:
    """polda-banten's jurisdiction (36) covers the report's village; polda-jatim's (35)
    does not. Both subscribe to everything."""
    readers = {"polda-banten": polda, "polda-jatim": jatim}
    for headers in readers.values():
        subscribe(client, headers)
    in_jurisdiction = {"polda-banten"}
    expected = {
        "CLEAR": set(readers),
        "GREEN": set(readers),
        "AMBER": in_jurisdiction | set(named),
        "AMBER+STRICT": set(named),
        "RED": set(named),
    }[marking]
    body = {"type": "village-early-warning", "payload": warning(), "tlp": marking}
    response = client.post("/v1/reports", json={**body, "recipients": list(named)}, headers=village)
    if not expected:  # it would reach no one: refused, the marking named as the cause
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"][0]["pointer"]) == ("no_recipient", "/tlp")
        assert deliveries(hub) == []
        return
    assert response.status_code == 202, response.text
    report_id = response.json()["id"]
    assert response.json()["routed_to"] == sorted(expected)
    assert response.json()["withheld_by_tlp"] == sorted(set(readers) - expected)
    assert {d.agency_id for d in deliveries(hub, report_id=report_id)} == expected
    for agency, headers in readers.items():
        status = client.get(f"/v1/reports/{report_id}", headers=headers).status_code
        assert status == (200 if agency in expected else 404), (agency, status)


def test_unknown_recipients_are_refused(client: TestClient, village: dict[str, str]) -> None:
    response = client.post(
        "/v1/reports",
        json={"type": "village-early-warning", "payload": warning(), "recipients": ["ghost"]},
        headers=village,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["pointer"] == "/recipients/0"


def test_an_inactive_agency_receives_nothing(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    from exchange.agencies import service as agencies

    subscribe(client, polda)
    with hub.session() as session:
        agencies.update_agency(session, "polda-banten", active=False, actor="test")
    refused = client.post(
        "/v1/reports",
        json={"type": "village-early-warning", "payload": warning(), "tlp": "GREEN"},
        headers=village,
    )
    assert refused.json()["error"]["code"] == "no_recipient"
    assert deliveries(hub) == []


def test_an_agency_holds_at_most_the_configured_number_of_subscriptions(
    client: TestClient, hub: Hub, polda: dict[str, str]
) -> None:
    hub.settings = hub.settings.model_copy(update={"max_subscriptions_per_agency": 2})
    first = subscribe(client, polda)
    subscribe(client, polda)
    refused = client.post("/v1/subscriptions", json={"connector": "inbox"}, headers=polda)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "subscription_limit"
    deleted = client.delete(f"/v1/subscriptions/{first['id']}", headers=polda)
    assert deleted.status_code == 204
    subscribe(client, polda)  # a deleted one frees its place


def test_routing_visits_the_subscriptions_that_match_not_all_of_them(
    client: TestClient, hub: Hub, village: dict[str, str], polda: dict[str, str]
) -> None:
    """300 subscriptions elsewhere or for other types, 3 that match: routing loads 3."""
    hub.settings = hub.settings.model_copy(update={"max_subscriptions_per_agency": 400})
    elsewhere = [
        {"regions": ["35.07"]},  # East Java
        {"regions": ["36.01.02.2001"]},  # another Banten village
        {"types": ["passport-application-flag"]},
    ]
    for index in range(300):
        subscribe(client, polda, **elsewhere[index % 3])
    matching = {
        subscribe(client, polda, **wanted)["id"]
        for wanted in ({"regions": ["36.03"]}, {"regions": ["36.03.11.2009"]}, {})
    }
    loaded: list[str] = []

    def on_load(target: Subscription, _context: object) -> None:
        loaded.append(target.id)

    event.listen(Subscription, "load", on_load)
    try:
        report_id = submit(client, village, warning(village_code="36.03.11.2009"))
    finally:
        event.remove(Subscription, "load", on_load)
    assert set(loaded) == matching  # (the workers' claims load them again: a set)
    assert {d.subscription_id for d in deliveries(hub, report_id=report_id)} == matching
