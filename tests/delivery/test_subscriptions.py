"""Subscriptions over HTTP and the CLI: validation with pointers, secrets shown once and
sealed at rest, isolation between agencies, deletion, secret rotation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from exchange.agencies.models import Scope
from exchange.audit.models import AuditEvent
from exchange.cli import app as cli
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.routing.models import Subscription
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import deliveries, submit, subscribe, webhook_subscription
from tests.delivery.receiver import Receiver
from tests.servers import wait_until


def test_create_shows_the_secret_once_and_seals_it(
    client: TestClient, hub: Hub, polda: dict[str, str], receiver: Receiver
) -> None:
    created = subscribe(
        client,
        polda,
        connector="webhook",
        config={"url": receiver.url},
        types=["village-early-warning"],
        regions=["36.03"],
        min_severity="medium",
        indicators=["minor_involved"],
        label="Subdit IV",
    )
    secret = created["secrets"]["secret"]
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{40,}", secret)
    assert created["config"]["secret"] == "**********"
    assert created["agency_id"] == "polda-banten"
    shown = client.get(f"/v1/subscriptions/{created['id']}", headers=polda).json()
    assert "secrets" not in shown
    assert secret not in json.dumps(shown)
    assert [s["id"] for s in client.get("/v1/subscriptions", headers=polda).json()] == [
        created["id"]
    ]
    with hub.session() as session:
        row = session.exec(select(Subscription)).one()
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "subscription.created"))
        logged = [e.canonical for e in events]
    assert secret.encode() not in row.config_sealed
    assert secret not in row.config_shown
    assert logged
    assert all(secret.encode() not in e for e in logged)


def test_a_callers_own_secret_is_kept(
    client: TestClient, polda: dict[str, str], receiver: Receiver
) -> None:
    mine = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    created = subscribe(
        client, polda, connector="webhook", config={"url": receiver.url, "secret": mine}
    )
    assert created["secrets"] == {"secret": mine}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"connector": "carrier-pigeon"}, "/connector"),
        ({"connector": "inbox", "types": ["no-such-type"]}, "/types/0"),
        ({"connector": "inbox", "regions": ["36.3"]}, "/regions/0"),
        ({"connector": "inbox", "min_severity": "extreme"}, "/min_severity"),
        ({"connector": "inbox", "throttle_per_s": 0}, "/throttle_per_s"),
        ({"connector": "inbox", "config": {"lease_s": 1}}, "/config/lease_s"),
        ({"connector": "inbox", "config": {"surprise": 1}}, "/config/surprise"),
        ({"connector": "webhook", "config": {}}, "/config/url"),
        ({"connector": "webhook", "config": {"url": "ftp://x"}}, "/config/url"),
        (
            {"connector": "webhook", "config": {"url": "https://a.example", "secret": "x"}},
            "/config/secret",
        ),
        ({"connector": "filedrop", "config": {"directory": "../etc"}}, "/config/directory"),
        ({"connector": "email", "config": {"to": ["not-an-address"]}}, "/config/to"),
        ({"connector": "email", "config": {"to": ["pidum@polda.example"]}}, "/config"),
        ({"connector": "inbox", "colour": "blue"}, "/colour"),
    ],
)
def test_bad_subscriptions_say_what_and_where(
    client: TestClient, hub: Hub, polda: dict[str, str], body: dict[str, object], pointer: str
) -> None:
    response = client.post("/v1/subscriptions", json=body, headers=polda)
    assert response.status_code == 422, response.text
    pointers = [d["pointer"] for d in response.json()["error"]["details"]]
    assert pointer in pointers
    with hub.session() as session:
        assert session.exec(select(Subscription)).all() == []


def test_subscribing_needs_the_receive_scope(client: TestClient, hub: Hub) -> None:
    submitter = bearer(issue_key(hub, "kanim-serang", [Scope.submit]))
    response = client.post("/v1/subscriptions", json={"connector": "inbox"}, headers=submitter)
    assert response.status_code == 403
    assert client.post("/v1/subscriptions", json={"connector": "inbox"}).status_code == 401


def test_an_agency_cannot_see_or_delete_anothers_subscription(
    client: TestClient, polda: dict[str, str], jatim: dict[str, str]
) -> None:
    theirs = subscribe(client, polda)
    assert client.get(f"/v1/subscriptions/{theirs['id']}", headers=jatim).status_code == 404
    assert client.delete(f"/v1/subscriptions/{theirs['id']}", headers=jatim).status_code == 404
    assert client.get("/v1/subscriptions", headers=jatim).json() == []
    assert client.get(f"/v1/subscriptions/{theirs['id']}", headers=polda).status_code == 200


def test_deleting_stops_routing_and_ends_due_deliveries(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    receiver.behaviour = lambda _id, _n: (503, {})
    created = webhook_subscription(client, polda, receiver)
    submit(client, village)
    wait_until(lambda: receiver.requests.total() >= 1, what="a first attempt", deadline_s=20)
    assert client.delete(f"/v1/subscriptions/{created['id']}", headers=polda).status_code == 204
    assert client.get(f"/v1/subscriptions/{created['id']}", headers=polda).status_code == 404
    (delivery,) = deliveries(hub)
    assert delivery.state == DeliveryState.dead  # and an attempt still running keeps it so
    assert delivery.last_error == "subscription deleted"
    submit(client, village, allow_no_recipient=True)
    assert len(deliveries(hub)) == 1


def test_rotation_signs_with_both_secrets_for_a_day(
    client: TestClient, hub: Hub, polda: dict[str, str], receiver: Receiver
) -> None:
    from connectors.webhook import WebhookConfig
    from exchange.routing.service import open_config

    created = subscribe(client, polda, connector="webhook", config={"url": receiver.url})
    rotated = client.post(f"/v1/subscriptions/{created['id']}/rotate-secret", headers=polda)
    assert rotated.status_code == 200
    new = rotated.json()["secrets"]["secret"]
    assert new != created["secrets"]["secret"]
    with hub.session() as session:
        config = open_config(session.get(Subscription, created["id"]), hub.keyring.sealer)
    assert isinstance(config, WebhookConfig)
    assert config.previous_expires_at is not None
    live = config.live_secrets(datetime.now(UTC))
    assert live == [new, created["secrets"]["secret"]]
    assert config.live_secrets(config.previous_expires_at) == [new]
    inbox = subscribe(client, polda)
    refused = client.post(f"/v1/subscriptions/{inbox['id']}/rotate-secret", headers=polda)
    assert refused.status_code == 422


def test_cli_manages_subscriptions(
    runner: CliRunner, hub: Hub, polda: dict[str, str], tmp_path: Path
) -> None:
    added = runner.invoke(
        cli,
        [
            "subscription",
            "add",
            "polda-banten",
            "--connector",
            "inbox",
            "--type",
            "village-early-warning",
            "--region",
            "36.03",
            "--min-severity",
            "high",
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    document = json.loads(added.output)
    assert document["regions"] == ["36.03"]
    listed = runner.invoke(cli, ["subscription", "list", "--agency", "polda-banten", "--json"])
    assert [s["id"] for s in json.loads(listed.output)] == [document["id"]]
    bad = runner.invoke(
        cli,
        [
            "subscription",
            "add",
            "polda-banten",
            "--connector",
            "inbox",
            "--config",
            "[1]",
            "--json",
        ],
    )
    assert bad.exit_code == 1
    assert json.loads(bad.output)["error"]["details"][0]["pointer"] == "/config"
    unknown = runner.invoke(cli, ["subscription", "add", "nobody", "--connector", "inbox"])
    assert unknown.exit_code == 1
    deleted = runner.invoke(cli, ["subscription", "delete", document["id"], "--json"])
    assert deleted.exit_code == 0
    assert json.loads(deleted.output)["active"] is False
