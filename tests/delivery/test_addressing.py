"""Reports reach the agencies they mean: recipients named in the payload, every region a
report concerns, case threads back to the people who raised the alarm, the sender's view of
where its report went, search, backfill and person lookup. Each observed failure of the
routing rules has its own test; the matrices check the hub against rules written out here,
independently of its code."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from exchange.agencies.models import AgencyKind, Scope, Sensitivity
from exchange.audit.models import AuditEvent
from exchange.hub import Hub
from exchange.reports.models import Report
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import deliveries, example, fast_settings, subscribe, warning

MARKINGS = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
NAMED_ONLY = {"AMBER+STRICT", "RED"}
REFERRAL = example("victim-referral", "returnee-to-dinsos")  # receiving_agency dinsos-banten
FLAG = example("passport-application-flag", "deferred-work-as-tourism")


def key(hub: Hub, agency: str, kind: AgencyKind, jurisdiction: str = "36", **extra: Any) -> Any:
    scopes = extra.pop("scopes", [Scope.submit, Scope.receive])
    return bearer(issue_key(hub, agency, scopes, kind=kind, jurisdiction=jurisdiction, **extra))


def post(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/v1/reports", json=body, headers=headers)


def accepted(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = post(client, headers, **body)
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.json()
    return document


def events(hub: Hub, action: str) -> list[dict[str, Any]]:
    with hub.session() as session:
        rows = session.exec(select(AuditEvent).order_by(AuditEvent.seq))  # type: ignore[arg-type]
        found = [json.loads(e.canonical) for e in rows]
    return [e for e in found if e["action"] == action]


def referral(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(REFERRAL)
    payload.update(changes)
    return payload


@pytest.fixture
def referrers(hub: Hub) -> dict[str, dict[str, str]]:
    """BP3MI refers victims; Dinsos receives them. Both exist as agencies."""
    return {
        "bp3mi-banten": key(hub, "bp3mi-banten", AgencyKind.bp3mi, clearance=set(Sensitivity)),
        "dinsos-banten": key(hub, "dinsos-banten", AgencyKind.social, clearance=set(Sensitivity)),
    }


# --- recipients the report means -------------------------------------------------------------


def test_a_red_referral_reaches_the_agency_its_payload_names(
    client: TestClient, hub: Hub, referrers: dict[str, dict[str, str]]
) -> None:
    """Observed: a RED referral naming ``receiving_agency`` but no ``recipients`` was
    answered 202 and delivered to nobody. Dinsos subscribes to something else entirely: a
    report addressed to it reaches it whatever its filters."""
    subscribe(client, referrers["dinsos-banten"], types=["departure-interception"])
    result = accepted(client, referrers["bp3mi-banten"], type="victim-referral", payload=referral())
    assert result["tlp"] == "RED"
    assert result["recipients"] == ["bp3mi-banten", "dinsos-banten"]
    assert result["routed_to"] == ["dinsos-banten"]
    assert result["withheld_by_tlp"] == []
    assert [d.agency_id for d in deliveries(hub, report_id=result["id"])] == ["dinsos-banten"]
    read = client.get(f"/v1/reports/{result['id']}", headers=referrers["dinsos-banten"])
    assert read.status_code == 200
    assert read.json()["payload"]["victim"]["name"] == "Siti Aminah"


def test_a_report_that_would_reach_no_one_is_refused_in_both_languages(
    client: TestClient, hub: Hub, referrers: dict[str, dict[str, str]]
) -> None:
    """Dinsos has no subscription: the referral would reach no one."""
    refused = post(client, referrers["bp3mi-banten"], type="victim-referral", payload=referral())
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "no_recipient"
    (detail,) = error["details"]
    assert detail["pointer"] == "/recipients"
    assert set(detail["messages"]) == {"en", "id"}
    assert "allow_no_recipient" in detail["messages"]["id"]
    with hub.session() as session:
        assert session.exec(select(func.count()).select_from(Report)).one() == 0
    kept = accepted(
        client,
        referrers["bp3mi-banten"],
        type="victim-referral",
        payload=referral(),
        allow_no_recipient=True,
    )
    assert kept["routed_to"] == []
    assert [w["code"] for w in kept["warnings"]] == ["no_recipient"]


def test_a_payload_naming_an_agency_the_hub_does_not_know_is_refused_there(
    client: TestClient, referrers: dict[str, dict[str, str]]
) -> None:
    refused = post(
        client,
        referrers["bp3mi-banten"],
        type="victim-referral",
        payload=referral(receiving_agency="dinsos-jatim"),
    )
    assert refused.status_code == 422
    assert [d["pointer"] for d in refused.json()["error"]["details"]] == [
        "/payload/receiving_agency"
    ]


# --- every region a report concerns ----------------------------------------------------------


def test_a_passport_flag_reaches_the_office_of_the_applicants_home(
    client: TestClient, hub: Hub
) -> None:
    """Observed: a flag filed by Kanim Serang (office 36.04) about a resident of Tanjakan
    Mekar (36.03.11.2009) did not reach Kanim Tangerang, subscribed to flags in 36.03."""
    serang = key(hub, "kanim-serang", AgencyKind.immigration, "36.04")
    tangerang = key(hub, "kanim-tangerang", AgencyKind.immigration, "36.03")
    subscribe(client, tangerang, types=["passport-application-flag"], regions=["36.03"])
    applicant = {**FLAG["applicant"], "home_region": "36.03.11.2009"}
    flag = {**FLAG, "office_region": "36.04", "applicant": applicant}
    result = accepted(client, serang, type="passport-application-flag", payload=flag)
    assert result["routed_to"] == ["kanim-tangerang"]


def test_the_district_of_a_nik_is_a_region_the_report_concerns(
    client: TestClient, hub: Hub
) -> None:
    """No home village given: the NIK (issued in 36.03.11) still tells where the person is
    from, and a district's subscription gets the flag."""
    serang = key(hub, "kanim-serang", AgencyKind.immigration, "36.04")
    rajeg = key(hub, "polsek-rajeg", AgencyKind.police, "36.03.11")
    subscribe(client, rajeg, regions=["36.03.11"])
    applicant = {k: v for k, v in FLAG["applicant"].items() if k != "home_region"}
    flag = {**FLAG, "office_region": "36.04", "applicant": applicant}
    assert applicant["nik"].startswith("360311")
    result = accepted(client, serang, type="passport-application-flag", payload=flag)
    assert result["routed_to"] == ["polsek-rajeg"]


# --- checks on by default --------------------------------------------------------------------


def test_an_observation_in_the_future_is_refused(client: TestClient, hub: Hub) -> None:
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    later = datetime.now(UTC) + timedelta(minutes=30)
    for observed_at in ("2031-01-01T08:00:00+07:00", later.isoformat()):
        refused = post(
            client,
            officer,
            type="village-early-warning",
            payload=warning(observed_at=observed_at),
            allow_no_recipient=True,
        )
        assert refused.status_code == 422, observed_at
        assert [d["pointer"] for d in refused.json()["error"]["details"]] == [
            "/payload/observed_at"
        ]
    # RFC 3339 forms Python's parser does not take: a lower-case z, a leap second.
    for observed_at, status in (
        ("2026-06-30T23:59:60Z", 202),
        ("2026-01-01t10:00:00z", 202),
        ("2031-06-30T23:59:60Z", 422),
    ):
        answer = post(
            client,
            officer,
            type="village-early-warning",
            payload=warning(observed_at=observed_at),
            allow_no_recipient=True,
        )
        assert answer.status_code == status, (observed_at, answer.text)
    skewed = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()  # a phone's clock drift
    accepted(
        client,
        officer,
        type="village-early-warning",
        payload=warning(observed_at=skewed),
        allow_no_recipient=True,
    )


def test_a_village_outside_the_senders_area_is_accepted_with_a_warning(
    client: TestClient, hub: Hub
) -> None:
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    own = accepted(
        client, officer, type="village-early-warning", payload=warning(), allow_no_recipient=True
    )
    assert "outside_jurisdiction" not in [w["code"] for w in own["warnings"]]
    other = accepted(
        client,
        officer,
        type="village-early-warning",
        payload=warning(village_code="36.01.02.2001"),
        allow_no_recipient=True,
    )
    (warned,) = [w for w in other["warnings"] if w["code"] == "outside_jurisdiction"]
    assert warned["pointer"] == "/payload/village_code"
    assert "36.01.02.2001" in warned["message"]


# --- the sender's view -----------------------------------------------------------------------


def test_the_sender_sees_where_its_report_went_and_who_acknowledged_it(
    client: TestClient, hub: Hub, referrers: dict[str, dict[str, str]]
) -> None:
    """Observed: the sender could not see where its report went."""
    subscription = subscribe(client, referrers["dinsos-banten"])
    report_id = accepted(
        client, referrers["bp3mi-banten"], type="victim-referral", payload=referral()
    )["id"]
    (delivery,) = deliveries(hub, report_id=report_id)
    acked = client.post(f"/v1/deliveries/{delivery.id}/ack", headers=referrers["dinsos-banten"])
    assert acked.status_code == 200, acked.text

    seen = client.get(f"/v1/reports/{report_id}/deliveries", headers=referrers["bp3mi-banten"])
    assert seen.status_code == 200
    (row,) = seen.json()
    assert row["agency_id"] == "dinsos-banten"
    assert row["state"] == "acknowledged"
    assert row["acknowledged_at"] is not None
    assert row["acknowledged_by"].startswith("agency:dinsos-banten/key:")
    assert row["receipt_verified"] is False
    assert subscription["id"] not in seen.text  # nothing of the recipient's subscription
    assert not {"subscription_id", "connector", "config", "last_error"} & set(row)
    # The recipient, who may read the report, may not read who else received it.
    other = client.get(f"/v1/reports/{report_id}/deliveries", headers=referrers["dinsos-banten"])
    assert other.status_code == 404


# --- case threads ----------------------------------------------------------------------------


def test_a_case_update_reaches_the_village_officer_who_raised_the_alarm(
    client: TestClient, hub: Hub
) -> None:
    """Observed: a case update referring to a village officer's report never reached the
    officer. Here the officer subscribes only to another district's reports, and still
    learns what became of its warning; an agency outside the case does not."""
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    police = key(hub, "polres-tangerang", AgencyKind.police, "36.03", clearance=set(Sensitivity))
    outsider = key(hub, "kanim-serang", AgencyKind.immigration, "36.04")
    subscribe(client, officer, regions=["36.01"])
    subscribe(client, police, types=["village-early-warning"])
    subscribe(client, outsider, types=["village-early-warning"], regions=["36.04"])
    alarm = accepted(client, officer, type="village-early-warning", payload=warning())["id"]
    case = {**example("case-update", "investigation-opened"), "references": [alarm]}
    update = accepted(client, police, type="case-update", payload=case)
    assert update["tlp"] == "AMBER"
    assert update["routed_to"] == ["pimpasa-tanjakan-mekar"]

    thread = client.get(f"/v1/reports/{alarm}/thread", headers=officer)
    assert thread.status_code == 200
    assert [r["id"] for r in thread.json()["reports"]] == [alarm, update["id"]]
    assert thread.json()["reports"][1]["refs"] == [alarm]  # through its payload's references
    assert client.get(f"/v1/reports/{alarm}/thread", headers=outsider).status_code == 404

    # A RED follow-up reaches only the agencies it names: the thread does not widen RED.
    secret = accepted(
        client,
        police,
        type="case-update",
        payload={**case, "references": [update["id"]]},
        tlp="RED",
        allow_no_recipient=True,
    )
    assert secret["routed_to"] == []
    # The officer is not *withheld*: naming it would tell the sender who was in the case.
    assert secret["withheld_by_tlp"] == []
    again = client.get(f"/v1/reports/{alarm}/thread", headers=officer).json()
    assert secret["id"] not in [r["id"] for r in again["reports"]]
    seen_by_police = client.get(f"/v1/reports/{alarm}/thread", headers=police).json()
    assert [r["id"] for r in seen_by_police["reports"]] == [alarm, update["id"], secret["id"]]


def test_receiving_a_broadcast_does_not_make_an_agency_party_to_the_case(
    client: TestClient, hub: Hub
) -> None:
    """Subscribing to everything (or backfilling it) brings an agency GREEN reports from
    anywhere; it must not bring it the AMBER case updates that follow them outside its
    jurisdiction."""
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    police = key(hub, "polres-tangerang", AgencyKind.police, "36.03", clearance=set(Sensitivity))
    elsewhere = key(hub, "polda-jatim", AgencyKind.police, "35")
    subscribe(client, officer, regions=["36.01"])  # filters that the update does not match
    subscribe(client, police, types=["village-early-warning"])
    alarm = accepted(client, officer, type="village-early-warning", payload=warning(), tlp="GREEN")[
        "id"
    ]
    subscribe(client, elsewhere, types=["village-early-warning"], backfill="PT1H")
    assert {d.agency_id for d in deliveries(hub, report_id=alarm)} == {
        "polres-tangerang",
        "polda-jatim",
    }
    case = {**example("case-update", "investigation-opened"), "references": [alarm]}
    update = accepted(client, police, type="case-update", payload=case)
    assert (update["tlp"], update["routed_to"]) == ("AMBER", ["pimpasa-tanjakan-mekar"])
    assert client.get(f"/v1/reports/{update['id']}", headers=elsewhere).status_code == 404


def addressed_rule(marking: str, how: str) -> bool:
    """Whether an agency whose own subscription filters do not match gets the report: named
    recipients always; participants of the case under CLEAR, GREEN and AMBER; nobody else."""
    if how == "named":
        return True
    if how == "participant":
        return marking not in NAMED_ONLY
    return False


@pytest.mark.parametrize("marking", MARKINGS)
def test_addressing_matrix(client: TestClient, hub: Hub, marking: str) -> None:
    """One report per way of being addressed, for every marking; each target agency
    subscribes with filters that the report does not match (another province)."""
    sender = key(hub, "polda-banten", AgencyKind.police, clearance=set(Sensitivity))
    targets = {
        how: key(hub, f"target-{how}", AgencyKind.social, "35")
        for how in ("named", "participant", "none")
    }
    for headers in targets.values():
        subscribe(client, headers, regions=["35"])
    subscribe(client, sender, types=["village-early-warning"])
    # The participant sent the earlier report of the case; the others never saw it.
    earlier = accepted(
        client,
        targets["participant"],
        type="victim-referral",
        payload=referral(referring_agency="target-participant", receiving_agency="polda-banten"),
        tlp="GREEN",  # so that referring to it does not raise the marking of the update
    )["id"]
    case = {**example("case-update", "investigation-opened"), "references": [earlier]}
    response = post(
        client,
        sender,
        type="case-update",
        payload=case,
        tlp=marking,
        recipients=["target-named"],
    )
    assert response.status_code == 202, response.text
    result = response.json()
    # A referenced RED report raises the marking; the rule applies to the marking it has.
    got = {d.agency_id for d in deliveries(hub, report_id=result["id"])}
    expected = {f"target-{how}" for how in targets if addressed_rule(result["tlp"], how)}
    assert got == expected
    assert result["routed_to"] == sorted(expected)


# --- search ----------------------------------------------------------------------------------


def test_search_lists_what_the_reader_may_see_filtered_paged_and_redacted(
    client: TestClient, hub: Hub
) -> None:
    """Observed: a liaison could not list or search reports (405)."""
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    manpower = key(hub, "disnakertrans-banten", AgencyKind.manpower)  # operational only
    outsider = key(hub, "polda-jatim", AgencyKind.police, "35")
    subscribe(client, manpower)
    plan = list(
        itertools.product(
            ["36.03.11.2009", "36.01.02.2001"],
            ["low", "high"],
            [["calo_recruiting"], ["no_contract"]],
        )
    )
    sent = {}
    for code, severity, indicators in plan:
        report_id = accepted(
            client,
            officer,
            type="village-early-warning",
            payload=warning(village_code=code, severity=severity, indicators=indicators),
            tlp="GREEN",
        )["id"]
        sent[report_id] = (code, severity, indicators)

    def ids(headers: dict[str, str], **params: Any) -> list[str]:
        found: list[str] = []
        after = None
        while True:
            query = {**params, "limit": 3, **({"after": after} if after else {})}
            page = client.get("/v1/reports", params=query, headers=headers)
            assert page.status_code == 200, page.text
            found += [item["id"] for item in page.json()["items"]]
            after = page.json()["next_cursor"]
            if after is None:
                return found

    everything = ids(manpower)
    assert sorted(everything) == sorted(sent)
    assert len(set(everything)) == len(everything)  # pages neither repeat nor skip
    assert ids(outsider) == []
    # Search matches the place a report is about, not the home of the people in it (all of
    # whom live in 36.03.11.2009 here): a reader not cleared to see where they live must
    # not find it out by narrowing a prefix.
    for prefix in ("36.01", "36.03.11"):
        assert sorted(ids(manpower, region=prefix)) == sorted(
            r for r, (code, _, _) in sent.items() if code.startswith(prefix)
        )
    assert sorted(ids(manpower, min_severity="high")) == sorted(
        r for r, (_, severity, _) in sent.items() if severity == "high"
    )
    assert sorted(ids(manpower, indicator="no_contract")) == sorted(
        r for r, (_, _, indicators) in sent.items() if "no_contract" in indicators
    )
    assert ids(manpower, type="case-update") == []
    assert ids(manpower, until="2000-01-01T00:00:00Z") == []

    page = client.get("/v1/reports", params={"limit": 1}, headers=manpower).json()
    (item,) = page["items"]
    assert "/persons_at_risk/people" in item["withheld"]
    assert warning()["persons_at_risk"]["people"][0]["nik"] not in json.dumps(item)
    reads = [e for e in events(hub, "report.read") if e["details"]["via"] == "GET /v1/reports"]
    assert f"report:{item['id']}" in [e["subject"] for e in reads]

    overflow = base64.urlsafe_b64encode(b"0001-01-01T00:00:00+01:00|" + b"a" * 32).decode()
    nul = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|" + b"\x00" * 32).decode()
    naive = base64.urlsafe_b64encode(b"2026-01-01T00:00:00|" + b"a" * 32).decode()
    for cursor in ("not-a-cursor", overflow.rstrip("="), nul.rstrip("="), naive.rstrip("=")):
        bad = client.get("/v1/reports", params={"after": cursor}, headers=manpower)
        assert bad.status_code == 422, cursor
        assert bad.json()["error"]["details"][0]["pointer"] == "/after"


# --- backfill --------------------------------------------------------------------------------


def backfill_rule(marking: str, named: bool, covers: bool) -> bool:
    """Whether a new subscription's backfill brings an earlier report: what routing would
    have allowed had the subscription existed."""
    if named:
        return True
    if marking in NAMED_ONLY:
        return False
    return covers if marking == "AMBER" else True


def test_backfill_delivers_the_earlier_reports_the_rules_allow(
    client: TestClient, hub: Hub
) -> None:
    """Observed: a liaison who subscribed at the start of a shift could not see the
    warnings of the last hour. Reports before the subscription, of every marking, named or
    not, in and out of the liaison's area; the backfill brings those the rules allow."""
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    liaison = key(hub, "polres-tangerang", AgencyKind.police, "36.03")
    key(hub, "someone-else", AgencyKind.police, "36")
    expected: set[str] = set()
    homes = [None, "36.03.12.2001"]  # where the person at risk lives, if the report says
    for marking, named, code, home in itertools.product(
        MARKINGS, [True, False], ["36.03.11.2009", "36.01.02.2001"], homes
    ):
        people = {"count": 1, "people": [{"home_region": home}]} if home else {"count": 2}
        report_id = accepted(
            client,
            officer,
            type="village-early-warning",
            payload=warning(village_code=code, persons_at_risk=people),
            tlp=marking,
            recipients=["polres-tangerang" if named else "someone-else"],
            allow_no_recipient=True,
        )["id"]
        concerned = [code, *([home] if home else [])]
        covers = any(c.startswith("36.03") for c in concerned)
        if backfill_rule(marking, named, covers=covers):
            expected.add(report_id)
    created = client.post(
        "/v1/subscriptions",
        json={"connector": "inbox", "types": ["village-early-warning"], "backfill": "PT1H"},
        headers=liaison,
    )
    assert created.status_code == 201, created.text
    assert created.json()["backfill"]["reports"] == len(expected)
    assert created.json()["backfill"]["truncated"] is False
    assert {d.report_id for d in deliveries(hub, agency_id="polres-tangerang")} == expected
    assert 0 < len(expected) < 40


def test_backfill_takes_only_an_iso_duration_within_the_retention(
    client: TestClient, hub: Hub
) -> None:
    liaison = key(hub, "polres-tangerang", AgencyKind.police, "36.03")
    for wrong in ("3600", 3600, "P99999D", "PT0S", "yesterday"):
        response = client.post(
            "/v1/subscriptions", json={"connector": "inbox", "backfill": wrong}, headers=liaison
        )
        assert response.status_code == 422, wrong
        assert response.json()["error"]["details"][0]["pointer"] == "/backfill", wrong
    assert client.get("/v1/subscriptions", headers=liaison).json() == []


# --- person lookup ---------------------------------------------------------------------------


@pytest.fixture
def settings(database_url: str, tmp_path: Any) -> Settings:
    return fast_settings(database_url, tmp_path, lookups_per_minute_per_key=4)


@pytest.mark.usefixtures("mid_window_rate_limits")
def test_a_counter_officer_finds_the_reports_naming_an_applicant(
    client: TestClient, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    officer = key(hub, "pimpasa-tanjakan-mekar", AgencyKind.immigration, "36.03.11.2009")
    identifying = {Sensitivity.public, Sensitivity.operational, Sensitivity.identifying}
    counter = key(hub, "kanim-tangerang", AgencyKind.immigration, "36.03", clearance=identifying)
    other = key(hub, "kanim-serang", AgencyKind.immigration, "36.04", clearance=identifying)
    uncleared = key(hub, "disnakertrans-banten", AgencyKind.manpower)
    subscribe(client, counter)
    subscribe(client, uncleared)
    nik = warning()["persons_at_risk"]["people"][0]["nik"]
    report_id = accepted(client, officer, type="village-early-warning", payload=warning())["id"]

    found = client.post("/v1/persons:lookup", json={"nik": nik}, headers=counter)
    assert found.status_code == 200, found.text
    (match,) = found.json()["matches"]
    assert (match["id"], match["type"], match["tlp"]) == (
        report_id,
        "village-early-warning",
        "AMBER",
    )
    nobody = client.post("/v1/persons:lookup", json={"nik": "3603110101900001"}, headers=counter)
    assert nobody.json()["matches"] == []
    # An office the report was not routed to learns nothing.
    assert client.post("/v1/persons:lookup", json={"nik": nik}, headers=other).json() == {
        "matches": []
    }
    lookups = events(hub, "person.lookup")
    assert len(lookups) == 3
    assert lookups[0]["details"]["reports"] == [report_id]
    assert all(nik not in json.dumps(e) for e in lookups)
    assert nik not in caplog.text

    # An agency that reads the report with the people withheld may not ask who they are.
    refused = client.post("/v1/persons:lookup", json={"nik": nik}, headers=uncleared)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_cleared")

    both = client.post(
        "/v1/persons:lookup", json={"nik": nik, "passport_number": "C1234567"}, headers=counter
    )
    assert both.status_code == 422
    # Two lookups so far with this key; the limit is four a minute.
    limited = [
        client.post("/v1/persons:lookup", json={"nik": nik}, headers=counter).status_code
        for _ in range(3)
    ]
    assert limited == [200, 200, 429]


def test_a_person_who_did_not_consent_cannot_be_looked_up(
    client: TestClient, hub: Hub, referrers: dict[str, dict[str, str]]
) -> None:
    subscribe(client, referrers["dinsos-banten"])
    nik = REFERRAL["victim"]["nik"]
    given = referral()
    refused = referral(consent={"given": False})
    ids = [
        accepted(client, referrers["bp3mi-banten"], type="victim-referral", payload=p)["id"]
        for p in (given, refused)
    ]
    found = client.post("/v1/persons:lookup", json={"nik": nik}, headers=referrers["dinsos-banten"])
    assert [m["id"] for m in found.json()["matches"]] == [ids[0]]
