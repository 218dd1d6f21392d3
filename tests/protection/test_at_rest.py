"""Nothing identifying at rest: a corpus of reports with known names, NIKs, passport
numbers and phone numbers goes through submission, routing, delivery and reads; then the
SQLite file (with its WAL) and a PostgreSQL dump are scanned byte for byte, and so is every
log line the hub wrote. None of those values may appear."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from exchange.agencies.models import AgencyKind, Scope, Sensitivity
from exchange.app import create_app
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import settle, submit, warning
from tests.servers import RedisServer, postgres_bin_dir

CORPUS_SIZE = 12


def person(n: int) -> dict[str, Any]:
    return {
        "name": f"Sitinurbaya Korpusdata {n:03d}",
        "nik": f"36031145059500{n:02d}",  # Tangerang, a woman born 5 May 1995
        "passport_number": f"C7{n:02d}4519",
        "phone": f"+62812777{n:05d}",
        "age_band": "25-34",
        "gender": "Female",
        "is_minor": False,
    }


def secrets_of(corpus: list[dict[str, Any]]) -> list[bytes]:
    values = []
    for p in corpus:
        values += [p["name"], p["nik"], p["passport_number"], p["phone"]]
    return [v.encode() for v in values]


def test_no_identifying_value_is_stored_or_logged_in_clear(
    client: TestClient,
    hub: Hub,
    village: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    polda = bearer(issue_key(hub, "polda-banten", [Scope.receive], clearance=set(Sensitivity)))
    assert client.post("/v1/subscriptions", json={"connector": "inbox"}, headers=polda)
    corpus = [person(n) for n in range(1, CORPUS_SIZE + 1)]
    for n in range(0, CORPUS_SIZE, 2):
        payload = warning(persons_at_risk={"count": 2, "people": corpus[n : n + 2]})
        submit(client, village, payload, tlp="GREEN")
    settle(hub, DeliveryState.delivered, count=CORPUS_SIZE // 2)
    items = client.get("/v1/inbox", headers=polda).json()["items"]
    assert {
        p["nik"] for i in items for p in i["envelope"]["data"]["persons_at_risk"]["people"]
    } == {p["nik"] for p in corpus}  # the values exist, for those cleared to see them
    needles = secrets_of(corpus)

    if hub.database.backend == "sqlite":
        hub.database.dispose()
        database = Path(hub.settings.database_url.removeprefix("sqlite:///"))
        files = [f for f in database.parent.glob(database.name + "*") if f.is_file()]
        stored = b"".join(f.read_bytes() for f in files)
        assert len(stored) > 100_000, files
    else:
        bin_dir = postgres_bin_dir()
        assert bin_dir is not None
        dump = tmp_path / "dump.sql"
        subprocess.run(
            [str(bin_dir / "pg_dump"), "--no-owner", "-f", str(dump), hub.settings.database_url],
            check=True,
            timeout=120,
        )
        stored = dump.read_bytes()
        assert b"COPY public.report " in stored
    found = [needle.decode() for needle in needles if needle in stored]
    assert found == []
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert [n.decode() for n in needles if n.decode() in logged] == []


@pytest.mark.redis
def test_no_identifying_value_passes_through_the_broker(
    settings: Settings, redis_server: RedisServer, tmp_path: Path
) -> None:
    """With Redis as the broker and no worker to drain it, every message the corpus caused
    is still in Redis: scan all of it."""
    broker = redis.Redis.from_url(redis_server.url)
    broker.flushdb()
    app = create_app(
        settings.model_copy(
            update={"broker_url": redis_server.url, "filedrop_root": tmp_path / "drop"}
        )
    )
    with TestClient(app) as api:
        hub: Hub = app.state.hub
        sender = bearer(issue_key(hub, "pimpasa", [Scope.submit], kind=AgencyKind.village))
        polda = bearer(issue_key(hub, "polda-banten", [Scope.receive], clearance=set(Sensitivity)))
        # A pushed delivery (an inbox's is delivered as routed and sends no message).
        filedrop = {"connector": "filedrop", "config": {"directory": "in"}}
        assert api.post("/v1/subscriptions", json=filedrop, headers=polda).status_code == 201
        corpus = [person(n) for n in range(1, 5)]
        submit(api, sender, warning(persons_at_risk={"count": 4, "people": corpus}), tlp="GREEN")
    held = b""
    for key in broker.scan_iter():
        kind = broker.type(key)
        if kind == b"list":
            held += b"".join(broker.lrange(key, 0, -1))
        elif kind == b"hash":
            held += b"".join(k + v for k, v in broker.hgetall(key).items())
        elif kind == b"zset":
            held += b"".join(broker.zrange(key, 0, -1))
        elif kind == b"string":
            held += broker.get(key) or b""
        elif kind == b"set":
            held += b"".join(broker.smembers(key))
    assert b"delivery.send" in held  # the messages are there ...
    assert [n.decode() for n in secrets_of(corpus) if n in held] == []  # ... holding ids only
