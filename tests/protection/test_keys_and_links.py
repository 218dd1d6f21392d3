"""Key rotation under load, linking reports about the same person without the number, and
the stricter marking winning when reports are combined."""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from exchange.agencies.models import Agency, AgencyKind, Scope, Sensitivity
from exchange.cli import app as cli
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.protection import vault
from exchange.protection.models import PersonLink, ReportKey
from exchange.protection.sealing import SEALING_DIR, key_id_of
from exchange.reports.models import Report
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import example, settle, submit, subscribe, warning

SUBMITTERS = 4
EACH = 15


def test_kek_rotation_under_load_loses_no_report(
    client: TestClient, hub: Hub, village: dict[str, str], runner: CliRunner
) -> None:
    before = [submit(client, village, allow_no_recipient=True) for _ in range(10)]
    (old_key,) = (key_id_of(p) for p in (hub.settings.key_dir / SEALING_DIR).glob("*.key"))
    submitted: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def keep_submitting() -> None:
        go.wait()
        for _ in range(EACH):
            response = client.post(
                "/v1/reports",
                json={
                    "type": "village-early-warning",
                    "allow_no_recipient": True,
                    "payload": warning(),
                },
                headers=village,
            )
            with lock:
                if response.status_code == 202:
                    submitted.append(response.json()["id"])
                else:
                    failures.append(response.text)

    threads = [threading.Thread(target=keep_submitting) for _ in range(SUBMITTERS)]
    for thread in threads:
        thread.start()
    go.set()
    rotated = runner.invoke(cli, ["keys", "rotate", "--json"])
    for thread in threads:
        thread.join()
    assert rotated.exit_code == 0, rotated.output
    new_key = json.loads(rotated.stdout)["key_id"]
    assert new_key != old_key
    assert failures == []
    assert len(submitted) == SUBMITTERS * EACH

    # Whatever was sealed with the old key while the rotation ran: one more pass.
    finished = runner.invoke(cli, ["keys", "rotate", "--retire", "--json"])
    assert finished.exit_code == 0, finished.output
    newest = json.loads(finished.stdout)["key_id"]
    assert old_key in json.loads(finished.stdout)["retired"]
    remaining = {key_id_of(p) for p in (hub.settings.key_dir / SEALING_DIR).glob("*.key")}
    assert remaining == {newest}
    with hub.session() as session:
        assert {k.kek_id for k in session.exec(select(ReportKey))} == {newest}
        for report_id in [*before, *submitted]:
            report = session.get(Report, report_id)
            assert report is not None
            opened = vault.unlock(
                session, report_id=report_id, ciphertext=report.payload, sealer=hub.keyring.sealer
            )
            assert json.loads(opened)["village_code"] == "36.03.11.2009"
    assert client.get(f"/v1/reports/{submitted[-1]}", headers=village).status_code == 200


def test_linking_tells_a_recipient_what_it_may_see_and_nothing_more(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    jatim: dict[str, str],
) -> None:
    """Three reports name the same NIK. polda may see all three; jatim (outside Banten) was
    named only on the last. Each learns of the earlier ones it may see, no more."""
    subscribe(client, polda)
    subscribe(client, jatim)
    shared = warning()  # persons_at_risk/people/0/nik: 3603114505950001
    nik = shared["persons_at_risk"]["people"][0]["nik"]
    first = submit(client, village, shared, tlp="AMBER")
    second = submit(client, village, shared, tlp="AMBER")
    third = submit(client, village, shared, tlp="AMBER", recipients=["polda-jatim"])
    other = submit(client, village, warning(persons_at_risk={"count": 1}), tlp="AMBER")

    def earlier(headers: dict[str, str], report_id: str) -> int:
        response = client.get(f"/v1/reports/{report_id}", headers=headers)
        assert response.status_code == 200, response.text
        return int(response.json()["earlier_reports"])

    assert [earlier(polda, r) for r in (first, second, third, other)] == [0, 1, 2, 0]
    assert earlier(jatim, third) == 0  # the two earlier ones were never routed to jatim
    assert client.get(f"/v1/reports/{first}", headers=jatim).status_code == 404
    settle(hub, DeliveryState.delivered, count=5)
    envelopes = {
        item["envelope"]["subject"]: item["envelope"]
        for item in client.get("/v1/inbox", headers=polda).json()["items"]
    }
    assert envelopes[third]["earlierreports"] == 2
    assert "earlierreports" not in envelopes[first]
    with hub.session() as session:
        digests = session.exec(select(PersonLink.digest, PersonLink.report_id)).all()
    by_report = {r: d for d, r in digests}
    assert by_report[first] == by_report[second] == by_report[third]
    assert all(nik not in d for d, _ in digests)


def test_the_stricter_marking_wins_when_reports_are_combined(
    client: TestClient, hub: Hub, polda: dict[str, str]
) -> None:
    """A reference (in ``refs`` or in the payload's own reference fields) to a report the
    sender may see raises the marking to the strictest."""
    village = bearer(
        issue_key(hub, "pimpasa", [Scope.submit, Scope.receive], kind=AgencyKind.village)
    )
    subscribe(client, village)  # the references below are to reports routed to their senders
    subscribe(client, polda)
    immigration = bearer(
        issue_key(
            hub,
            "kanim-serang",
            [Scope.submit],
            kind=AgencyKind.immigration,
            clearance=set(Sensitivity),
        )
    )
    referral = submit(client, immigration, tlp="RED", recipients=["polda-banten", "pimpasa"])
    update = client.post(
        "/v1/reports",
        json={
            "type": "village-early-warning",
            "payload": warning(),
            "tlp": "GREEN",
            "refs": [referral],
            "recipients": ["polda-banten"],
        },
        headers=village,
    )
    assert update.status_code == 202, update.text
    assert update.json()["tlp"] == "RED"
    assert [w["code"] for w in update.json()["warnings"]] == ["tlp_raised"]

    police = bearer(issue_key(hub, "polda-banten", [Scope.submit], kind=AgencyKind.police))
    case = example("case-update", "investigation-opened")
    followed = client.post(
        "/v1/reports",
        json={
            "type": "case-update",
            "allow_no_recipient": True,
            "payload": {**case, "references": [referral]},
            "tlp": "AMBER",
        },
        headers=police,
    )
    assert followed.status_code == 202, followed.text
    assert followed.json()["tlp"] == "RED"


def test_a_reference_tells_nothing_of_a_report_the_sender_may_not_see(
    client: TestClient, hub: Hub
) -> None:
    """Naming a report one may not see is answered exactly like naming none: no existence,
    no marking. Likewise a recipient one may not name (the operator, an inactive agency)."""
    immigration = bearer(
        issue_key(hub, "kanim-serang", [Scope.submit], kind=AgencyKind.immigration)
    )
    police = bearer(issue_key(hub, "polda-banten", [Scope.receive], kind=AgencyKind.police))
    subscribe(client, police)
    secret = submit(client, immigration, tlp="RED", recipients=["polda-banten"])
    outsider = bearer(issue_key(hub, "pimpasa", [Scope.submit], kind=AgencyKind.village))
    issue_key(hub, "hub", [Scope.admin], kind=AgencyKind.operator)
    issue_key(hub, "dissolved-office", [Scope.receive])
    with hub.session() as session:
        gone = session.get(Agency, "dissolved-office")
        assert gone is not None
        gone.active = False
        session.add(gone)

    def refusal(**fields: Any) -> dict[str, Any]:
        response = client.post(
            "/v1/reports",
            json={
                "type": "village-early-warning",
                "allow_no_recipient": True,
                "payload": warning(),
                **fields,
            },
            headers=outsider,
        )
        assert response.status_code == 422, response.text
        error: dict[str, Any] = response.json()["error"]
        return error

    nobody = "0" * 32
    hidden, missing = refusal(refs=[secret]), refusal(refs=[nobody])
    assert hidden["details"][0]["message"].replace(secret, "ID") == missing["details"][0][
        "message"
    ].replace(nobody, "ID")
    assert "RED" not in str(hidden)
    named = [
        refusal(recipients=[name])["details"][0]
        for name in ("hub", "dissolved-office", "no-such-office")
    ]
    assert len({d["message"].split("'")[0] for d in named}) == 1
    assert {d["pointer"] for d in named} == {"/recipients/0"}
