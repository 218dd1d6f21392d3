"""Fixtures for routing and delivery: a hub with a fast retry schedule that may reach
loopback webhooks, agencies in and out of Banten, and helpers to submit and subscribe."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import AgencyKind, Scope, Sensitivity
from exchange.delivery.models import Delivery, DeliveryState
from exchange.hub import Hub
from exchange.registry.service import default_schemas_dir
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.receiver import Receiver, running_receiver
from tests.servers import wait_until

FAST_SCHEDULE = [0, 0.05, 0.1, 0.2, 0.3, 0.4]


def example(report_type: str, name: str) -> dict[str, Any]:
    path = default_schemas_dir() / report_type / "examples" / "valid" / f"{name}.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


WARNING = example("village-early-warning", "calo-group-departure")  # 36.03.11.2009, high


def warning(**changes: Any) -> dict[str, Any]:
    """A village early warning with some fields changed."""
    payload = copy.deepcopy(WARNING)
    payload.update(changes)
    return payload


def fast_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": "memory://",
        "key_dir": tmp_path / "keys",
        "log_json": False,
        "worker_threads": 4,
        "delivery_schedule_s": FAST_SCHEDULE,
        "delivery_timeout_s": 1.0,
        "delivery_backoff_floor_s": 0.2,
        "sweep_interval_s": 0.2,
        "webhook_allow_networks": ["127.0.0.0/8"],
        "filedrop_root": tmp_path / "drop",
    }
    return Settings(**(values | overrides))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return fast_settings(database_url, tmp_path)


@pytest.fixture
def village(hub: Hub) -> dict[str, str]:
    """A village officer in Pandeglang (36.01) submitting reports."""
    return bearer(
        issue_key(
            hub,
            "pimpasa-tanjakan-mekar",
            [Scope.submit],
            kind=AgencyKind.village,
            jurisdiction="36.01",
        )
    )


@pytest.fixture
def polda(hub: Hub) -> dict[str, str]:
    """Regional police for all of Banten (36), cleared for every field."""
    return bearer(
        issue_key(
            hub,
            "polda-banten",
            [Scope.receive],
            kind=AgencyKind.police,
            jurisdiction="36",
            clearance=set(Sensitivity),
        )
    )


@pytest.fixture
def jatim(hub: Hub) -> dict[str, str]:
    """An agency outside Banten (East Java, 35)."""
    return bearer(
        issue_key(hub, "polda-jatim", [Scope.receive], kind=AgencyKind.police, jurisdiction="35")
    )


def subscribe(
    client: TestClient, headers: dict[str, str], *, connector: str = "inbox", **fields: Any
) -> dict[str, Any]:
    response = client.post(
        "/v1/subscriptions", json={"connector": connector, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def submit(
    client: TestClient,
    headers: dict[str, str],
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    body = {"type": "village-early-warning", "payload": payload or WARNING, **fields}
    response = client.post("/v1/reports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def deliveries(hub: Hub, **where: Any) -> list[Delivery]:
    with hub.session() as session:
        query = select(Delivery)
        for name, value in where.items():
            query = query.where(getattr(Delivery, name) == value)
        return list(session.exec(query))


def settle(
    hub: Hub,
    state: DeliveryState,
    *,
    count: int = 1,
    report_id: str | None = None,
    deadline_s: float = 30,
) -> list[Delivery]:
    """Wait until ``count`` deliveries (of ``report_id``, if given) are in ``state`` as
    the hub recorded it, not merely as a receiver saw it; return them."""
    where = {} if report_id is None else {"report_id": report_id}

    def reached() -> bool:
        return sum(d.state == state for d in deliveries(hub, **where)) == count

    wait_until(reached, what=f"{count} deliveries {state.value}", deadline_s=deadline_s)
    return [d for d in deliveries(hub, **where) if d.state == state]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(Receiver()) as running:
        yield running


def webhook_subscription(
    client: TestClient, headers: dict[str, str], receiver: Receiver, **fields: Any
) -> dict[str, Any]:
    """A webhook subscription to ``receiver``, which then knows the secret to verify with."""
    created = subscribe(
        client, headers, connector="webhook", config={"url": receiver.url}, **fields
    )
    receiver.secret = created["secrets"]["secret"]
    return created
