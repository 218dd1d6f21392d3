"""Version 2 of the report types: labels in both languages, errors that say in words what is
expected, telephone numbers as typed, recruiters that villages may see and that link across
reports, departure facts that route, and referrals without consent that identify no one."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from exchange.agencies.models import AgencyKind, Scope, Sensitivity
from exchange.hub import Hub
from exchange.registry.formats import e164
from exchange.registry.service import SchemaRegistry, default_schemas_dir
from tests.conftest import bearer, issue_key, signing_key
from tests.delivery.conftest import example, subscribe, warning
from tests.reports.test_submit import signature_header

REGISTRY = SchemaRegistry(default_schemas_dir())
ALERT = example("recruitment-actor-alert", "unlicensed-agency")
REFERRAL = example("victim-referral", "returnee-to-dinsos")


def officer(hub: Hub) -> dict[str, str]:
    return bearer(
        issue_key(
            hub,
            "pimpasa-tanjakan-mekar",
            [Scope.submit, Scope.receive],
            kind=AgencyKind.immigration,
            jurisdiction="36.03.11.2009",
        )
    )


def send(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/reports", json={"allow_no_recipient": True, **body}, headers=headers)


def test_every_type_has_a_second_version_that_accepts_what_the_first_did() -> None:
    assert REGISTRY.problems() == []
    for name in REGISTRY.names():
        assert [t.version for t in REGISTRY.versions(name)] == [1, 2]


def test_an_enum_value_without_both_labels_is_a_schema_problem(tmp_path: Path) -> None:
    directory = tmp_path / "schemas"
    shutil.copytree(default_schemas_dir(), directory)
    path = directory / "common" / "definitions.json"
    document = json.loads(path.read_text())
    del document["$defs"]["severity"]["x-labels"]["critical"]["id"]
    path.write_text(json.dumps(document))
    problems = SchemaRegistry(directory).problems()
    assert problems
    assert all("/severity lacks x-labels en and id for 'critical'" in p for p in problems)


def test_errors_say_in_words_what_is_expected(client: TestClient, hub: Hub) -> None:
    headers = {**officer(hub), "Accept-Language": "id"}
    refused = send(
        client,
        headers,
        type="village-early-warning",
        payload=warning(village_code="36.3.11.2009", severity="dire"),
    )
    assert refused.status_code == 422
    details = {d["pointer"]: d["message"] for d in refused.json()["error"]["details"]}
    assert details["/payload/village_code"] == (
        "Seharusnya kode desa 13 karakter, mis. 36.03.11.2009."
    )
    assert "high (Tinggi)" in details["/payload/severity"]
    assert "critical (Kritis)" in details["/payload/severity"]
    assert not any("^" in message for message in details.values())  # no regex


def test_telephone_numbers_are_taken_as_typed_and_stored_in_e164(
    client: TestClient, hub: Hub
) -> None:
    headers = officer(hub)
    key = signing_key(hub, "pimpasa-tanjakan-mekar")
    payload = warning()
    payload["persons_at_risk"]["people"][0]["phone"] = "0812-3456-7890"
    # The signature is over what the sender sent, not over what the hub stores.
    response = send(
        client,
        {**headers, "Exchange-Signature": signature_header(key, payload)},
        type="village-early-warning",
        payload=payload,
    )
    assert response.status_code == 202, response.text
    normalised = [w for w in response.json()["warnings"] if w["code"] == "normalised"]
    assert [w["pointer"] for w in normalised] == ["/payload/persons_at_risk/people/0/phone"]
    stored = client.get(f"/v1/reports/{response.json()['id']}", headers=headers).json()
    assert stored["payload"]["persons_at_risk"]["people"][0]["phone"] == "+6281234567890"
    not_a_number = copy.deepcopy(payload)
    not_a_number["persons_at_risk"]["people"][0]["phone"] = "0812"
    refused = send(client, headers, type="village-early-warning", payload=not_a_number)
    assert refused.status_code == 422
    assert "0812-3456-7890" in refused.json()["error"]["details"][0]["message"]


def test_a_recruiter_is_seen_by_villages_and_linked_across_reports(
    client: TestClient, hub: Hub
) -> None:
    """Observed: a GREEN recruiter alert stripped the whole actor from village and manpower
    recipients, and the same calo across reports was not linked."""
    manpower = bearer(
        issue_key(
            hub, "disnakertrans-banten", [Scope.submit, Scope.receive], kind=AgencyKind.manpower
        )
    )
    village = officer(hub)
    subscribe(client, village)
    first = {**ALERT, "actor": {**ALERT["actor"], "phone": "0857-1234-5678"}}
    again = {**ALERT, "actor": {**ALERT["actor"], "phone": "+62 857 1234 5678"}}
    ids = [
        send(client, manpower, type="recruitment-actor-alert", payload=p).json()["id"]
        for p in (first, again)
    ]
    seen = client.get(f"/v1/reports/{ids[1]}", headers=village).json()
    assert seen["payload"]["actor"]["names"] == ["PT Maju Jaya Abadi", "Bu R"]
    assert seen["payload"]["actor"]["phone"] == "+6285712345678"
    assert seen["withheld"] == []
    assert seen["earlier_reports"] == 1  # the same phone, typed another way
    # Version 1 keeps its own rules: the actor stays identifying there.
    old = send(client, manpower, type="recruitment-actor-alert", version=1, payload=ALERT)
    withheld = client.get(f"/v1/reports/{old.json()['id']}", headers=village).json()
    assert "/actor" in withheld["withheld"]


def test_the_departure_point_is_a_region_the_report_concerns(client: TestClient, hub: Hub) -> None:
    airport_police = bearer(
        issue_key(
            hub, "polres-bandara", [Scope.receive], kind=AgencyKind.police, jurisdiction="36.71"
        )
    )
    subscribe(client, airport_police, regions=["36.71"])
    departure = {
        "date": "2026-12-02",
        "departure_point": {"name": "Soekarno-Hatta", "kind": "airport", "region_code": "36.71"},
        "transit_points": [{"country": "MY", "place": "Kuala Lumpur"}],
        "destination_country": "KH",
        "sponsor_or_employer": {"name": "Golden Fortune Co.", "country": "KH"},
        "placement_agency": {"name": "PT Maju Jaya Abadi", "licence_number": "KEP.123/2024"},
    }
    people = {"count": 4}
    result = send(
        client,
        officer(hub),
        type="village-early-warning",
        payload=warning(departure=departure, persons_at_risk=people),
    ).json()
    assert result["version"] == 2
    assert result["routed_to"] == ["polres-bandara"]
    seen = client.get(f"/v1/reports/{result['id']}", headers=airport_police).json()
    assert seen["payload"]["departure"] == departure  # operational: the police see it all


def test_a_referral_without_consent_identifies_no_one(client: TestClient, hub: Hub) -> None:
    bp3mi = bearer(issue_key(hub, "bp3mi-banten", [Scope.submit], kind=AgencyKind.bp3mi))
    dinsos = bearer(
        issue_key(
            hub,
            "dinsos-banten",
            [Scope.receive],
            kind=AgencyKind.social,
            clearance=set(Sensitivity),
        )
    )
    subscribe(client, dinsos)
    without = {**REFERRAL, "consent": {"given": False}}
    result = client.post(
        "/v1/reports", json={"type": "victim-referral", "payload": without}, headers=bp3mi
    ).json()
    (warned,) = [w for w in result["warnings"] if w["code"] == "shared_without_consent"]
    assert warned["pointer"] == "/payload/consent/given"
    seen = client.get(f"/v1/reports/{result['id']}", headers=dinsos).json()
    assert "/victim" in seen["withheld"]
    assert "victim" not in seen["payload"]
    assert "Siti" not in json.dumps(seen)
    assert seen["payload"]["needs"] == REFERRAL["needs"]  # what the services need to act
    with_consent = client.post(
        "/v1/reports", json={"type": "victim-referral", "payload": REFERRAL}, headers=bp3mi
    ).json()
    full = client.get(f"/v1/reports/{with_consent['id']}", headers=dinsos).json()
    assert full["payload"]["victim"]["name"] == "Siti Aminah"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("0062 812 3456 7890", "+6281234567890"),  # 00 for +, as phones dial it
        ("(021) 555-1234", "+62215551234"),
        ("+60 12-345 6789", "+60123456789"),
        ("0812", None),  # too short
        ("+6200628123456789", None),  # longer than E.164 allows
    ],
)
def test_telephone_numbers_in_e164(typed: str, stored: str | None) -> None:
    assert e164(typed) == stored
