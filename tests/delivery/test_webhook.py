"""Webhook delivery end to end over real HTTP on loopback: Standard Webhooks signatures
(``v1`` checked by the ``standardwebhooks`` package, ``v1a`` against the published key),
CloudEvents envelopes, retries on the schedule, 410, 429 and Retry-After, and the throttle."""

from __future__ import annotations

import base64
import ipaddress
import itertools
import random
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlmodel import select

from connectors.base import ConnectorContext, RetryableFailure
from connectors.testing import sample_envelope
from connectors.webhook import REFUSED, WebhookConfig, WebhookConnector, is_public
from exchange.agencies.models import Agency
from exchange.audit.models import AuditEvent
from exchange.crypto import b64url_decode
from exchange.delivery.models import DeliveryAttempt, DeliveryState
from exchange.delivery.service import DeliveryPolicy
from exchange.hub import Hub
from exchange.models import utcnow
from exchange.routing.models import Subscription
from exchange.routing.service import disable_subscription
from tests.conftest import bearer
from tests.delivery.conftest import (
    WARNING,
    deliveries,
    settle,
    submit,
    warning,
    webhook_subscription,
)
from tests.delivery.receiver import Receiver
from tests.servers import free_port, wait_until


def envelope_key(client: TestClient) -> Ed25519PublicKey:
    keys = client.get("/.well-known/exchange/keys").json()["keys"]
    (jwk,) = [k for k in keys if k["use"] == "envelope"]
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))


def test_a_report_reaches_a_webhook_signed_both_ways_as_a_cloudevent(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    subscription = webhook_subscription(client, polda, receiver)
    report_id = submit(client, village)
    wait_until(lambda: len(receiver.accepted) == 1, what="the delivery", deadline_s=20)

    (received,) = receiver.accepted  # v1 verified by the standardwebhooks package already
    assert receiver.refused_signatures == 0
    signatures = dict(s.split(",", 1) for s in received.headers["webhook-signature"].split())
    signed = (
        f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}."
        f"{received.body.decode()}"
    ).encode()
    envelope_key(client).verify(base64.b64decode(signatures["v1a"]), signed)  # raises if wrong

    event = received.event
    (delivery,) = deliveries(hub, report_id=report_id)
    assert received.headers["content-type"] == "application/cloudevents+json"
    assert received.headers["webhook-id"] == event.get_id() == delivery.id
    assert event.get_source() == "/agencies/pimpasa-tanjakan-mekar"
    assert event.get_type() == "exchange.report.village-early-warning.v2"
    assert event.get_subject() == report_id
    assert event.get_dataschema() == hub.registry.get("village-early-warning").uri
    assert event.get_data() == WARNING
    assert event.get_extension("tlp") == "AMBER"
    assert event.get_extension("datahash") == delivery.data_hash

    settle(hub, DeliveryState.delivered, report_id=report_id)
    with hub.session() as session:
        attempts = session.exec(select(DeliveryAttempt)).all()
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert [(a.number, a.outcome, a.status_code) for a in attempts] == [(1, "delivered", 200)]
    assert "report.routed" in actions
    assert "delivery.delivered" in actions
    listed = client.get("/v1/deliveries", headers=polda).json()
    assert [(d["id"], d["subscription_id"]) for d in listed] == [(delivery.id, subscription["id"])]


def test_a_wrong_secret_is_refused_by_the_receiver(
    client: TestClient,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    webhook_subscription(client, polda, receiver)
    receiver.secret = "whsec_" + base64.b64encode(b"x" * 32).decode()  # not the hub's
    submit(client, village)
    wait_until(lambda: receiver.refused_signatures >= 2, what="retries", deadline_s=20)
    assert receiver.accepted == []


def test_500s_are_retried_until_the_receiver_recovers(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    receiver.behaviour = lambda _id, attempt: (500, {}) if attempt <= 3 else (200, {})
    webhook_subscription(client, polda, receiver)
    report_id = submit(client, village)
    wait_until(lambda: len(receiver.accepted) == 1, what="the fourth attempt", deadline_s=20)
    settle(hub, DeliveryState.delivered, report_id=report_id)
    with hub.session() as session:
        attempts = session.exec(select(DeliveryAttempt).order_by(DeliveryAttempt.number)).all()
    assert [(a.outcome, a.status_code) for a in attempts] == [
        ("retry", 500),
        ("retry", 500),
        ("retry", 500),
        ("delivered", 200),
    ]


def test_a_delivery_dies_when_the_schedule_is_spent_and_can_be_replayed(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    failing = True
    receiver.behaviour = lambda _id, _n: (503, {}) if failing else (200, {})
    webhook_subscription(client, polda, receiver)
    report_id = submit(client, village)
    settle(hub, DeliveryState.dead, report_id=report_id)
    (dead,) = deliveries(hub, report_id=report_id)
    assert dead.attempts == len(hub.settings.delivery_schedule_s)
    assert receiver.accepted == []

    failing = False
    replayed = client.post(f"/v1/deliveries/{dead.id}/replay", headers=polda)
    assert replayed.status_code == 200
    assert replayed.json()["state"] == "pending"
    wait_until(lambda: receiver.accepted_ids() == [dead.id], what="the replay", deadline_s=20)
    settle(hub, DeliveryState.delivered, report_id=report_id)
    again = client.post(f"/v1/deliveries/{dead.id}/replay", headers=polda)
    assert again.status_code == 200  # a delivered one may be sent again, same envelope id
    wait_until(
        lambda: receiver.accepted_ids() == [dead.id, dead.id],
        what="the second replay",
        deadline_s=20,
    )


def test_recover_replays_dead_deliveries_in_a_window(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    failing = True
    receiver.behaviour = lambda _id, _n: (500, {}) if failing else (200, {})
    webhook_subscription(client, polda, receiver)
    since = datetime.now(UTC).isoformat()
    ids = [submit(client, village) for _ in range(3)]
    wait_until(
        lambda: (
            all(d.state == DeliveryState.dead for d in deliveries(hub))
            and len(deliveries(hub)) == 3
        ),
        what="three dead deliveries",
        deadline_s=30,
    )
    failing = False
    until = datetime.now(UTC).isoformat()
    bad = client.post(
        "/v1/deliveries:recover", json={"since": until, "until": since}, headers=polda
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["pointer"] == "/since"
    recovered = client.post(
        "/v1/deliveries:recover", json={"since": since, "until": until}, headers=polda
    )
    assert recovered.status_code == 200
    assert len(recovered.json()["replayed"]) == 3
    wait_until(lambda: len(receiver.accepted) == 3, what="recovered deliveries", deadline_s=20)
    assert sorted(r.event.get_subject() for r in receiver.accepted) == sorted(ids)


def test_410_disables_the_subscription_and_tells_its_owner(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    receiver.behaviour = lambda _id, _n: (410, {})
    subscription = webhook_subscription(client, polda, receiver)
    report_id = submit(client, village)
    settle(hub, DeliveryState.dead, report_id=report_id)
    assert receiver.requests.total() == 1  # no retry after 410
    shown = client.get(f"/v1/subscriptions/{subscription['id']}", headers=polda).json()
    assert shown["active"] is False
    assert "410" in shown["disabled_reason"]
    submit(client, village, allow_no_recipient=True)  # no longer routed there
    assert len(deliveries(hub)) == 1
    with hub.session() as session:
        disabled = session.exec(
            select(AuditEvent).where(AuditEvent.action == "subscription.disabled")
        ).all()
    assert len(disabled) == 1
    # Another send answered 410 at the same time disables nothing more, and logs nothing.
    with hub.session() as session:
        stored = session.get(Subscription, subscription["id"])
        assert stored is not None
        disable_subscription(session, subscription=stored, reason="the receiver answered 410 Gone")
    with hub.session() as session:
        again = session.exec(
            select(AuditEvent).where(AuditEvent.action == "subscription.disabled")
        ).all()
    assert len(again) == 1


def test_retry_schedule_jitter_floor_and_retry_after() -> None:
    policy = DeliveryPolicy(schedule_s=(0, 5, 300, 1800), timeout_s=15, backoff_floor_s=60)
    rng = random.Random(7)
    plain = RetryableFailure("500")
    delays = [policy.next_delay(1, plain, rng) for _ in range(500)]
    assert all(d is not None and 4.0 <= d <= 6.0 for d in delays)
    assert max(d for d in delays if d) > 5.5
    assert min(d for d in delays if d) < 4.5
    throttled = RetryableFailure("429", throttled=True)
    assert policy.next_delay(1, throttled, rng) == 60  # at least a minute after a 429/timeout
    late = RetryableFailure("503", retry_after_s=10_000)
    delay = policy.next_delay(2, late, rng)
    assert delay is not None
    assert 240 <= delay <= 720
    early = RetryableFailure("503", retry_after_s=1)
    delay = policy.next_delay(2, early, rng)
    assert delay is not None
    assert 240 <= delay <= 360
    assert policy.next_delay(4, plain, rng) is None  # the schedule is spent: dead


def test_the_default_schedule_is_svix_like() -> None:
    from exchange.settings import Settings

    assert Settings().delivery_schedule_s == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def test_429_with_retry_after_is_honoured(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    receiver.behaviour = lambda _id, n: (429, {"Retry-After": "0"}) if n == 1 else (200, {})
    webhook_subscription(client, polda, receiver)
    report_id = submit(client, village)
    wait_until(lambda: len(receiver.accepted) == 1, what="the retry", deadline_s=20)
    settle(hub, DeliveryState.delivered, report_id=report_id)
    with hub.session() as session:
        first, second = session.exec(select(DeliveryAttempt).order_by(DeliveryAttempt.number)).all()
    gap = (second.started_at - first.started_at).total_seconds()
    assert gap >= hub.settings.delivery_backoff_floor_s  # the floor after a 429


def test_throttle_spaces_deliveries(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    webhook_subscription(client, polda, receiver, throttle_per_s=5)
    before = utcnow()  # the first slot is no earlier than this
    for _ in range(6):
        submit(client, village)
    settle(hub, DeliveryState.delivered, count=6)
    with hub.session() as session:
        starts = sorted(a.started_at for a in session.exec(select(DeliveryAttempt)))
        subscription = session.exec(select(Subscription)).one()
    assert subscription.next_slot_at is not None
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    # Slots are 0.2 s apart and a start is never earlier than its slot, so the sixth starts
    # at least five slots after the first slot. (Measured from the first *start* this would
    # fail whenever a loaded machine starts the first attempt late.)
    assert len(starts) == 6
    assert (starts[-1] - before).total_seconds() >= 5 * 0.2 - 0.01, gaps


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]:9/hook",
        "https://127.0.0.1/x",
    ],
)
def test_internal_addresses_are_refused_unless_allowed(
    client: TestClient, hub: Hub, polda: dict[str, str], url: str
) -> None:
    hub.settings = hub.settings.model_copy(update={"webhook_allow_networks": []})
    response = client.post(
        "/v1/subscriptions", json={"connector": "webhook", "config": {"url": url}}, headers=polda
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["pointer"] == "/config"


def test_plain_http_to_a_public_address_is_refused(
    client: TestClient, polda: dict[str, str]
) -> None:
    response = client.post(
        "/v1/subscriptions",
        json={"connector": "webhook", "config": {"url": "http://93.184.216.34/hook"}},
        headers=polda,
    )
    assert response.status_code == 422
    assert "http://" in response.json()["error"]["message"]


def test_region_and_severity_travel_as_extensions(
    client: TestClient, village: dict[str, str], polda: dict[str, str], receiver: Receiver
) -> None:
    webhook_subscription(client, polda, receiver)
    submit(client, village, warning(severity="critical"))
    wait_until(lambda: len(receiver.accepted) == 1, what="the delivery", deadline_s=20)
    event = receiver.accepted[0].event
    assert event.get_extension("severity") == "critical"
    assert event.get_extension("region") == "36.03.11.2009"


def test_a_delivery_on_its_way_cannot_be_replayed(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    receiver.behaviour = lambda _id, attempt: None if attempt == 1 else (200, {})  # hangs once
    webhook_subscription(client, polda, receiver)
    report_id = submit(client, village)
    wait_until(lambda: receiver.requests.total() == 1, what="the first attempt", deadline_s=20)
    (delivery,) = deliveries(hub, report_id=report_id)
    refused = client.post(f"/v1/deliveries/{delivery.id}/replay", headers=polda)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "delivery_state_conflict"
    assert client.post(f"/v1/deliveries/{'0' * 32}/replay", headers=polda).status_code == 404
    settle(hub, DeliveryState.delivered, report_id=report_id)
    assert receiver.accepted_ids() == [delivery.id]


def _failing_delivery(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    """A delivery to polda-banten that has failed once and waits for its retry."""
    receiver.behaviour = lambda _id, _attempt: (500, {})
    webhook_subscription(client, polda, receiver)
    submit(client, village)
    wait_until(
        lambda: sum(receiver.requests.values()) >= 1, what="a first failed attempt", deadline_s=20
    )


def test_deactivating_an_agency_ends_its_due_deliveries(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
    admin_token: str,
) -> None:
    _failing_delivery(client, hub, village, polda, receiver)
    patched = client.patch(
        "/v1/agencies/polda-banten", json={"active": False}, headers=bearer(admin_token)
    )
    assert patched.status_code == 200
    (ended,) = settle(hub, DeliveryState.dead)
    assert ended.last_error == "recipient deactivated"
    attempts_then = sum(receiver.requests.values())
    hub.broker.join("delivery")  # every retry message already queued has run
    assert sum(receiver.requests.values()) == attempts_then
    with hub.session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "agency.updated")).one()
    assert orjson.loads(event.canonical)["details"]["changed"]["ended_deliveries"] == 1


def test_a_claim_ends_a_delivery_whose_recipient_was_deactivated(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    polda: dict[str, str],
    receiver: Receiver,
) -> None:
    """Even when the agency row was switched off without ending its deliveries (by hand, or
    a process that raced the deactivation), the next due retry is not attempted."""
    _failing_delivery(client, hub, village, polda, receiver)
    with hub.session() as session:
        agency = session.get(Agency, "polda-banten")
        assert agency is not None
        agency.active = False
        session.add(agency)
    (ended,) = settle(hub, DeliveryState.dead)
    assert ended.last_error == "recipient deactivated"


@pytest.mark.parametrize(
    "address",
    [
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "192.0.0.8",  # IETF protocol assignments
        "198.18.0.1",  # benchmarking
        "224.0.0.1",  # multicast
        "::ffff:10.0.0.1",  # IPv4-mapped
        "2002:a00:1::1",  # 6to4 around 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo
        "ff0e::1",  # global-scope multicast
        "fd00::1",  # unique local
        "fec0::1",  # site-local
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
        "3fff::1",  # documentation
        "5f00::1",  # SRv6
    ],
)
def test_the_ssrf_guard_admits_only_public_destinations(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "2002:808:808::1"])
def test_public_destinations_pass_the_guard(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_refusals_say_the_same_whatever_the_reason(
    client: TestClient, hub: Hub, polda: dict[str, str]
) -> None:
    """Internal, embedded-internal and unresolvable destinations are refused in the same
    words, which name no address: a subscriber learns nothing of the hub's network or DNS."""
    hub.settings = hub.settings.model_copy(update={"webhook_allow_networks": []})
    messages = set()
    for url in (
        "https://10.1.2.3/hook",
        "https://[2002:a00:1::1]/hook",
        "https://100.64.0.1/hook",
        f"https://{'a' * 64}.example/hook",  # a label too long to resolve
    ):
        response = client.post(
            "/v1/subscriptions",
            json={"connector": "webhook", "config": {"url": url}},
            headers=polda,
        )
        assert response.status_code == 422, url
        messages.add(response.json()["error"]["details"][0]["message"])
    (message,) = messages
    assert REFUSED in message
    assert "10." not in message


def test_at_delivery_a_refused_and_an_unreachable_destination_look_alike() -> None:
    """Refused before any connection (loopback not allowed) or allowed but closed: the
    subscriber sees the same retryable failure; the reason goes to the operator's log."""
    closed = f"http://127.0.0.1:{free_port()}/hook"
    seen = []
    for networks in ((), (ipaddress.ip_network("127.0.0.0/8"),)):
        context = ConnectorContext(
            signing_key=Ed25519PrivateKey.generate(),
            signing_key_id="k",
            timeout_s=2,
            allow_networks=networks,
        )
        with pytest.raises(RetryableFailure) as failure:
            WebhookConnector(context).deliver(
                sample_envelope(), WebhookConfig.model_validate({"url": closed})
            )
        seen.append(str(failure.value))
    assert seen == [REFUSED, REFUSED]


def test_a_slow_nameserver_is_inside_the_attempts_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscriber's nameserver answering slowly holds the attempt no longer than its
    deadline (the lookup thread is abandoned, not the delivery thread)."""
    import socket
    import time

    real = socket.getaddrinfo

    def tarpit(host: str, *args: object, **kwargs: object) -> object:
        if host == "slow.hook.example":
            time.sleep(3)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("connectors.webhook.socket.getaddrinfo", tarpit)
    context = ConnectorContext(
        signing_key=Ed25519PrivateKey.generate(), signing_key_id="k", timeout_s=1
    )
    started = time.monotonic()
    with pytest.raises(RetryableFailure) as failure:
        WebhookConnector(context).deliver(
            sample_envelope(), WebhookConfig.model_validate({"url": "https://slow.hook.example/"})
        )
    assert time.monotonic() - started < 2.5
    assert str(failure.value) == REFUSED
