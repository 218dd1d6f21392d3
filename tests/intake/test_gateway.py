"""The text-message gateway, driven over HTTP: good, retried, unknown-sender, bad-signature,
unreadable and partially readable messages; what was stored, audited and answered."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from exchange.agencies import service as agencies
from exchange.audit.models import AuditEvent
from exchange.hub import Hub
from exchange.intake import service
from exchange.intake.models import FieldDraft
from exchange.protection import service as protection
from exchange.reports.models import IdempotencyRecord, Report
from tests.intake.conftest import Gateway

OFFICER = "+6281234567890"  # the officer's number, as the gateway writes it


def post(client: TestClient, gateway: Gateway, *messages: tuple[str, str, str]) -> Any:
    headers, body = gateway.request(*messages)
    answer = client.post(f"/v1/intakes/{gateway.intake_id}", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def reports(hub: Hub) -> list[Report]:
    with hub.session() as session:
        return list(session.exec(select(Report).order_by(col(Report.received_at))))


def events(hub: Hub, action: str) -> list[Any]:
    with hub.session() as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        return [json.loads(row.canonical) for row in rows]


def test_a_readable_message_becomes_a_report_once_and_its_sender_hears_where_it_went(
    client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    text = "TPPO Tanjakan_Mekar TINGGI calo,rombongan 5 Malaysia Berangkat malam ini"
    answer = post(client, gateway, ("m-1", OFFICER, text))
    (reply,) = answer["replies"]
    assert reply["id"] == "m-1"
    assert reply["to"] == OFFICER
    assert reply["text"].startswith("Laporan diterima")
    assert "polres-tangerang" in reply["text"]

    (report,) = reports(hub)
    assert report.type == "village-early-warning"
    with hub.session() as session:
        seen = protection.view(
            session,
            report=report,
            reader=agencies.get_agency(session, "pimpasa-tanjakan-mekar"),  # the sender
            registry=hub.registry,
            sealer=hub.keyring.sealer,
        )
    assert seen.data["village_code"] == "36.03.11.2009"  # the village, by its name
    assert seen.data["indicators"] == ["calo_recruiting", "group_departure"]
    assert seen.data["destination_country"] == "MY"
    assert seen.data["persons_at_risk"] == {"count": 5}
    (submitted,) = events(hub, "report.submitted")
    assert submitted["actor"].startswith("agency:pimpasa-tanjakan-mekar/user:")

    # The gateway did not hear the answer and sends the message again: nothing new.
    again = post(client, gateway, ("m-1", OFFICER, text))
    assert again == answer
    assert len(reports(hub)) == 1
    received = events(hub, "intake.received")
    assert [e["details"]["outcome"] for e in received] == ["submitted", "repeated"]
    assert OFFICER not in json.dumps(received)  # no phone number in the log


def test_an_unknown_sender_is_told_so_and_nothing_is_kept(
    client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    answer = post(client, gateway, ("m-2", "+6289999999999", "TPPO 36.03.11.2009 TINGGI calo"))
    assert "tidak terdaftar" in answer["replies"][0]["text"]
    assert reports(hub) == []
    with hub.session() as session:
        assert session.exec(select(func.count()).select_from(FieldDraft)).one() == 0
    assert [e["details"]["outcome"] for e in events(hub, "intake.received")] == ["unknown_sender"]


def test_a_request_not_signed_by_the_gateway_is_refused_and_read_no_further(
    client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    headers, body = gateway.request(("m-3", OFFICER, "TPPO 36.03.11.2009 TINGGI calo"))
    forged = body.replace(b"TINGGI", b"KRITIS")
    answer = client.post(f"/v1/intakes/{gateway.intake_id}", content=forged, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    unsigned = client.post(f"/v1/intakes/{gateway.intake_id}", content=body)
    assert unsigned.status_code == 401
    unknown = client.post(f"/v1/intakes/{'0' * 32}", content=body, headers=headers)
    assert unknown.status_code == 404
    assert reports(hub) == []
    assert len(events(hub, "intake.refused")) == 2


def test_unreadable_and_half_read_messages_become_drafts_never_reports(
    client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    answer = post(
        client,
        gateway,
        ("m-4", OFFICER, "halo pak, ada calo di desa"),
        ("m-5", OFFICER, "TPPO 36.03.11.2009 sangat calo 5 MY"),
        ("m-6", OFFICER, "RUJUK 36.03.11.2009 tinggi bp3mi-banten diduga pulang Dipulangkan"),
    )
    texts = [reply["text"] for reply in answer["replies"]]
    assert all(text.startswith("Laporan belum terkirim") for text in texts)
    assert "Awali dengan" in texts[0]
    assert "'sangat' tidak dikenal" in texts[1]
    assert reports(hub) == []
    with hub.session() as session:
        user_id = session.exec(select(FieldDraft.user_id)).first()
        assert user_id is not None
        drafts = service.open_drafts(session, user_id=user_id, sealer=hub.keyring.sealer)
        raw = session.exec(select(FieldDraft.content_sealed)).all()
    assert len(drafts) == 3
    by_message = {d.record.message_id: d for d in drafts}
    assert by_message["m-5"].record.report_type == "village-early-warning"
    assert [p["pointer"] for p in by_message["m-5"].problems] == ["/severity"]
    assert by_message["m-5"].payload["indicators"] == ["calo_recruiting"]
    referral = by_message["m-6"]
    assert {p["pointer"] for p in referral.problems} >= {""}  # consent and victim missing
    assert all(b"Dipulangkan" not in blob for blob in raw)  # sealed at rest
    # The gateway retries the batch: the same drafts, no new ones.
    post(client, gateway, ("m-5", OFFICER, "TPPO 36.03.11.2009 sangat calo 5 MY"))
    with hub.session() as session:
        assert session.exec(select(func.count()).select_from(FieldDraft)).one() == 3


def test_the_plugins_are_listed_with_their_config_schemas(
    client: TestClient, demo: dict[str, dict[str, str]]
) -> None:
    listed = client.get("/v1/connectors", headers=demo["polda-banten"]).json()
    kinds = {(p["kind"], p["name"]) for p in listed}
    assert {("connector", "webhook"), ("connector", "inbox"), ("intake", "sms-gateway")} <= kinds
    webhook = next(p for p in listed if p["name"] == "webhook")
    assert webhook["config_schema"]["required"] == ["url"]
    assert client.get("/v1/connectors").status_code == 401
    spec = client.get("/openapi.json").json()
    assert "/v1/intakes/{intake_id}" in spec["paths"]


def test_a_message_is_handled_once_for_good_and_an_id_reused_for_another_is_refused(
    client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    text = "TPPO 36.03.11.2009 TINGGI calo 5 MY"
    first = post(client, gateway, ("m-8", OFFICER, text))
    with hub.session() as session:  # a day later the idempotency records are gone...
        for record in session.exec(select(IdempotencyRecord)).all():
            session.delete(record)
    later = post(client, gateway, ("m-8", OFFICER, text))
    assert later == first  # ...and the message is still answered as the first time
    assert len(reports(hub)) == 1
    other = post(client, gateway, ("m-8", "+6289999999999", "TPPO sangat rahasia"))
    assert "sudah dipakai" in other["replies"][0]["text"]
    assert "Laporan diterima" not in other["replies"][0]["text"]
    outcomes = [e["details"]["outcome"] for e in events(hub, "intake.received")]
    assert outcomes == ["submitted", "repeated", "id_reused"]


def test_one_bad_message_spoils_none_of_the_others_in_its_batch(
    client: TestClient, hub: Hub, gateway: Gateway
) -> None:
    answer = post(
        client,
        gateway,
        ("m-9", OFFICER, "TPPO 36.03.11.2009 TINGGI calo 99999999999999999999 MY"),
        ("m-10", OFFICER, "x" * 5000),
        ("m-11", OFFICER, "TPPO 36.03.11.2009 TINGGI calo 5 MY ada\x00nol"),
        ("m-12", OFFICER, "TPPO 36.03.11.2009 TINGGI calo 5 MY Siti, NIK 3603114101050001"),
        ("m-13", "+62" + "1" * 40, "TPPO 36.03.11.2009 TINGGI calo 5 MY"),
        ("m-14", OFFICER, "TPPO 36.03.11.2009 TINGGI calo 5 MY Berangkat malam ini"),
    )
    texts = {reply["id"]: reply["text"] for reply in answer["replies"]}
    assert "di luar batas" in texts["m-9"]
    assert "terlalu panjang" in texts["m-10"]
    assert "tidak dapat dibaca" in texts["m-11"]
    assert "Jangan kirim NIK" in texts["m-12"]  # no identifiers by text message
    assert "tidak terdaftar" in texts["m-13"]
    assert texts["m-14"].startswith("Laporan diterima")
    assert len(reports(hub)) == 1


def test_malformed_requests_are_refused_not_crashed_on(
    client: TestClient, gateway: Gateway
) -> None:
    headers, body = gateway.request(("m-15", OFFICER, "TPPO 36.03.11.2009 TINGGI calo 5 MY"))
    url = f"/v1/intakes/{gateway.intake_id}"
    for changed in (
        {"webhook-signature": "garbage"},
        {"webhook-signature": "v1,a,b"},
        {"webhook-timestamp": "nan"},
    ):
        assert client.post(url, content=body, headers={**headers, **changed}).status_code == 401
    assert client.post(url, content=b"\xff\xfe", headers=headers).status_code == 401
    form = {**headers, "content-type": "application/x-www-form-urlencoded"}
    assert client.post(url, content=b"a=b", headers=form).status_code == 401
