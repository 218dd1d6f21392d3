"""Redaction matrix: every clearance (all 16 sets of the four classes) x every report type
x both ways a recipient gets a report (GET and the envelope). Checked against the schemas'
own x-sensitivity annotations: nothing above the clearance is there, everything within it
is there unchanged, and the withheld pointers say exactly what was removed."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
import pytest
import rfc8785
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import AgencyKind, Scope, Sensitivity
from exchange.audit.models import AuditEvent
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.registry.service import default_schemas_dir, values_at
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import settle

CLASSES = [s.value for s in Sensitivity]
CLEARANCES = [
    frozenset(c) for n in range(len(CLASSES) + 1) for c in itertools.combinations(CLASSES, n)
]


def with_own_references(
    client: TestClient,
    hub: Hub,
    report_type: str,
    payload: dict[str, Any],
    sender: dict[str, str],
    kind: AgencyKind,
) -> dict[str, Any]:
    """The payload with its references to other reports (x-report-refs) pointing at a GREEN
    report the sender sent itself: a reference must name a report its sender may see."""
    paths = hub.registry.get(report_type).report_ref_paths
    if not paths:
        return payload
    own_type = next(
        t for t in hub.registry.latest() if kind in t.submitters and not t.report_ref_paths
    )
    own_example = next(json.loads(p.read_text()) for p, valid in own_type.examples() if valid)
    sent = client.post(
        "/v1/reports",
        json={
            "type": own_type.name,
            "allow_no_recipient": True,
            "payload": own_example,
            "tlp": "GREEN",
        },
        headers=sender,
    )
    assert sent.status_code == 202, sent.text
    references = {p.rstrip("/*").lstrip("/") for p in paths}
    return {**payload, **{name: [sent.json()["id"]] for name in references}}


def examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(default_schemas_dir().glob("*/examples/valid/*.json")):
        found.append((path.parts[-4], json.loads(path.read_text())))
    return found


def check_view(
    hub: Hub,
    report_type: str,
    original: dict[str, Any],
    data: dict[str, Any],
    withheld: list[str],
    clearance: frozenset[str],
) -> None:
    classified = hub.registry.classified(hub.registry.get(report_type))
    for pattern, sensitivity in classified:
        shown = list(values_at(data, pattern))
        if sensitivity not in clearance:
            assert shown == [], f"{pattern} ({sensitivity}) reached clearance {sorted(clearance)}"
    expected = []
    for pattern, sensitivity in classified:
        if sensitivity in clearance:
            continue
        for pointer, _ in values_at(original, pattern):
            if not any(pointer.startswith(w + "/") for w in expected):
                expected.append(pointer)
    assert sorted(withheld) == sorted(expected)
    # Every leaf field within the clearance (itself and every enclosing field) is there,
    # unchanged.
    patterns = [p for p, _ in classified]
    for pattern, sensitivity in classified:
        if any(other.startswith(pattern + "/") for other in patterns):
            continue  # a container: its leaves are checked
        prefixes = ["/".join(pattern.split("/")[:i]) for i in range(2, pattern.count("/") + 1)]
        enclosing = {s for p, s in classified if p in prefixes}
        if sensitivity in clearance and enclosing <= clearance:
            assert list(values_at(data, pattern)) == list(values_at(original, pattern)), pattern


@pytest.mark.parametrize(
    ("report_type", "payload"), examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_redaction_matrix(
    client: TestClient, hub: Hub, report_type: str, payload: dict[str, Any]
) -> None:
    submitter_kind = AgencyKind(sorted(hub.registry.get(report_type).submitters)[0])
    sender = bearer(issue_key(hub, "sender", [Scope.submit], kind=submitter_kind))
    readers = {}
    for index, clearance in enumerate(CLEARANCES):
        headers = bearer(
            issue_key(hub, f"reader-{index:02d}", [Scope.receive], clearance=clearance)
        )
        assert client.post("/v1/subscriptions", json={"connector": "inbox"}, headers=headers)
        readers[clearance] = headers
    payload = with_own_references(client, hub, report_type, payload, sender, submitter_kind)
    for pattern in hub.registry.get(report_type).recipient_paths:  # agencies it names exist
        issue_key(hub, payload[pattern.strip("/")], [Scope.receive])
    response = client.post(
        "/v1/reports",
        json={"type": report_type, "allow_no_recipient": True, "payload": payload, "tlp": "GREEN"},
        headers=sender,
    )
    assert response.status_code == 202, response.text
    report_id = response.json()["id"]
    settle(hub, DeliveryState.delivered, count=len(CLEARANCES), report_id=report_id)

    for clearance, headers in readers.items():
        got = client.get(f"/v1/reports/{report_id}", headers=headers).json()
        check_view(hub, report_type, payload, got["payload"], got["withheld"], clearance)
        items = client.get("/v1/inbox", headers=headers).json()["items"]
        (item,) = [i for i in items if i["envelope"]["subject"] == report_id]
        envelope = item["envelope"]
        withheld = envelope.get("withheld", "").split()
        assert envelope["data"] == got["payload"]
        assert withheld == got["withheld"]
        assert (
            envelope["datahash"]
            == __import__("hashlib").sha256(rfc8785.dumps(envelope["data"])).hexdigest()
        )
        check_view(hub, report_type, payload, envelope["data"], withheld, clearance)

    full = client.get(f"/v1/reports/{report_id}", headers=sender).json()
    assert full["payload"] == payload  # the sender sees what it sent
    assert full["withheld"] == []
    assert orjson.loads(orjson.dumps(full["payload"])) == payload


def test_the_clearance_is_set_by_an_admin_and_audited(
    client: TestClient, hub: Hub, admin_token: str
) -> None:
    issue_key(hub, "dinsos-banten", [Scope.receive], kind=AgencyKind.social)
    admin = bearer(admin_token)
    changed = client.patch(
        "/v1/agencies/dinsos-banten",
        json={"clearance": ["public", "operational", "special"]},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["clearance"] == ["operational", "public", "special"]
    bad = client.patch("/v1/agencies/dinsos-banten", json={"clearance": ["secret"]}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["pointer"] == "/clearance/0"
    own = bearer(issue_key(hub, "dinsos-banten", [Scope.receive]))
    forbidden = client.patch(
        "/v1/agencies/dinsos-banten", json={"clearance": list(CLASSES)}, headers=own
    )
    assert forbidden.status_code == 403
    with hub.session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "agency.updated"))
        changes = [orjson.loads(e.canonical)["details"]["changed"] for e in events]
    assert {"clearance": ["operational", "public", "special"]} in changes


def test_each_withheld_field_says_why_clearance_or_the_persons_consent() -> None:
    """Without consent nobody gets identifying fields: for a reader cleared for them, that
    is the reason given; for one that is not, its clearance is (it would not get them with
    consent either)."""
    from exchange.protection.redaction import reasons, redact, withheld_pointers
    from exchange.registry.service import SchemaRegistry

    registry = SchemaRegistry(default_schemas_dir())
    report_type = registry.get("victim-referral", 2)
    payload = json.loads(
        (default_schemas_dir() / "victim-referral/examples/valid/dinsos-to-bp3mi.json").read_text()
    )
    payload["consent"]["given"] = False
    identifying = set(
        withheld_pointers(
            payload,
            report_type=report_type,
            registry=registry,
            clearance={"public", "operational", "special"},
        )
    ) - set(
        withheld_pointers(
            payload,
            report_type=report_type,
            registry=registry,
            clearance={"public", "operational", "special", "identifying"},
        )
    )
    assert "/victim" in identifying
    for clearance, expected in (
        ({"public", "operational", "identifying", "special"}, "consent"),
        ({"public", "operational", "special"}, "clearance"),
    ):
        _, withheld = redact(
            payload, report_type=report_type, registry=registry, clearance=clearance
        )
        why = reasons(
            payload,
            report_type=report_type,
            registry=registry,
            clearance=clearance,
            withheld=withheld,
        )
        assert set(why) == set(withheld)
        assert {why[p] for p in identifying} == {expected}
