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
from fastapi.testclient import TestClient

from exchange.agencies.models import Scope, Sensitivity
from exchange.delivery.models import DeliveryState
from exchange.hub import Hub
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import settle, submit, warning
from tests.servers import postgres_bin_dir

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
