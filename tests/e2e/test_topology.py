"""The production topology without Docker: PostgreSQL and Redis on loopback, two API
processes and two worker processes, driven over HTTP like an operator would."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.processes import Topology, wait_ready
from tests.servers import PostgresServer, RedisServer, free_port, wait_until

pytestmark = pytest.mark.e2e

JOB_DEADLINE_S = 30.0


@pytest.fixture
def topology(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Topology]:
    redis.Redis.from_url(redis_server.url).flushdb()
    database_url = postgres.create_database(f"topology_{uuid.uuid4().hex[:12]}")
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_BROKER_URL": redis_server.url,
        "EXCHANGE_KEY_DIR": str(tmp_path / "keys"),
        "EXCHANGE_LOG_JSON": "true",
    }
    running = Topology(env, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def test_two_apis_and_two_workers_share_the_work(topology: Topology) -> None:
    init = json.loads(topology.run("init", "--json"))
    admin = {"Authorization": f"Bearer {init['agencies'][0]['api_key']['token']}"}

    apis = []
    for name in ("api-a", "api-b"):
        port = free_port()
        topology.spawn(name, "serve", "--port", str(port))
        apis.append(f"http://127.0.0.1:{port}")
    workers = {
        name: topology.spawn(name, "worker", "--threads", "2") for name in ("worker-a", "worker-b")
    }
    for base_url in apis:
        wait_ready(base_url)

    # What one API process writes, the other reads: the database is shared.
    created = httpx.post(
        f"{apis[0]}/v1/agencies",
        json={
            "id": "polres-serang",
            "name": "Polres Serang",
            "kind": "police",
            "jurisdiction": "36.04",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert httpx.get(f"{apis[1]}/v1/agencies/polres-serang", headers=admin).status_code == 200

    def run_probes(count: int) -> set[str]:
        """Request probes on alternate APIs, and read each back through the other one."""
        ids = [
            httpx.post(f"{apis[i % 2]}/v1/ops/probes", headers=admin).json()["id"]
            for i in range(count)
        ]
        answers: dict[str, str] = {}

        def all_answered() -> bool:
            for i, probe_id in enumerate(ids):
                if probe_id not in answers:
                    probe = httpx.get(
                        f"{apis[(i + 1) % 2]}/v1/ops/probes/{probe_id}", headers=admin
                    )
                    if probe.json()["completed_by"]:
                        answers[probe_id] = probe.json()["completed_by"]
            return len(answers) == count

        wait_until(all_answered, what=f"{count} probes answered", deadline_s=JOB_DEADLINE_S)
        return {answer.rsplit(":", 1)[1] for answer in answers.values()}

    worker_pids = {str(p.pid) for p in workers.values()}
    answered_by = run_probes(20)
    assert answered_by <= worker_pids, "a probe was answered by something other than a worker"

    # One worker leaves gracefully; the other carries on alone.
    workers["worker-a"].send_signal(signal.SIGTERM)
    assert workers["worker-a"].wait(timeout=30) == 0, topology.log("worker-a")
    assert run_probes(10) == {str(workers["worker-b"].pid)}

    # Both workers integrated the log concurrently; an auditor verifies it end to end.
    keys = httpx.get(f"{apis[0]}/.well-known/exchange/keys").json()["keys"]
    vkey = next(k["note_verifier_key"] for k in keys if k["use"] == "checkpoint")

    def agency_logged() -> bool:
        size = int(httpx.get(f"{apis[1]}/v1/audit/checkpoint", headers=admin).text.split("\n")[1])
        return size >= 3  # hub agency, its key, polres-serang

    wait_until(agency_logged, what="the events signed into a checkpoint", deadline_s=10)
    verified = json.loads(
        topology.run(
            "audit",
            "verify",
            "--hub",
            apis[1],
            "--log-key",
            vkey,
            "--json",
            env={"EXCHANGE_TOKEN": init["agencies"][0]["api_key"]["token"]},
        )
    )
    assert verified["ok"] is True
    assert verified["size"] >= 3

    # The API processes logged requests as JSON lines, with no token in them.
    token = init["agencies"][0]["api_key"]["token"]
    for name in ("api-a", "api-b"):
        lines = [
            json.loads(line) for line in topology.log(name).splitlines() if line.startswith("{")
        ]
        assert any(line.get("route") == "/v1/ops/probes" for line in lines)
        assert token.split("_", 2)[2] not in topology.log(name)
