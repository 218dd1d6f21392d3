"""Witnesses on a live hub: two witness processes cosign while reports keep arriving, and
an auditor verifies the log against them without waiting for the hub to fall quiet; once it
does, the witnesses stop: a cosignature does not grow the log it signs."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import Topology, wait_ready
from tests.servers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = json.loads(
    (REPO / "schemas/village-early-warning/examples/valid/calo-group-departure.json").read_text()
)
WITNESSES = ("bp3mi", "polda")


@pytest.fixture
def live_hub(tmp_path: Path) -> Iterator[tuple[Topology, str]]:
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "EXCHANGE_BROKER_URL": "memory://",
        "EXCHANGE_KEY_DIR": str(tmp_path / "keys"),
        "EXCHANGE_LOG_JSON": "true",
    }
    topology = Topology(env, tmp_path)
    try:
        topology.run("init", "--json")
        port = free_port()
        topology.spawn("hub", "serve", "--port", str(port))
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url)
        yield topology, base_url
    finally:
        topology.stop_all()


def json_lines(topology: Topology, name: str) -> list[dict[str, Any]]:
    complete = topology.log(name).rpartition("\n")[0]  # a line still being written waits
    return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]


def checkpoint_size(base_url: str, token: str) -> int:
    note = httpx.get(
        f"{base_url}/v1/audit/checkpoint", headers={"Authorization": f"Bearer {token}"}
    )
    return int(note.text.split("\n")[1])


def test_two_witnesses_cosign_a_live_hub_and_an_auditor_verifies_it_under_load(
    live_hub: tuple[Topology, str], tmp_path: Path
) -> None:
    topology, base_url = live_hub
    topology.run("agency", "add", "kanim-serang", "--name", "Kanim Serang", "--kind",
                 "immigration", "--jurisdiction", "36")  # fmt: skip
    submitter = json.loads(
        topology.run("agency", "key", "create", "kanim-serang", "--scope", "submit", "--json")
    )["token"]
    witnesses: dict[str, dict[str, str]] = {}
    for name in WITNESSES:
        agency = f"witness-{name}"
        topology.run("agency", "add", agency, "--name", f"Witness {name}", "--kind", "other",
                     "--jurisdiction", "36")  # fmt: skip
        token = json.loads(
            topology.run("agency", "key", "create", agency, "--scope", "audit", "--json")
        )["token"]
        key = tmp_path / f"{name}.pem"
        made = json.loads(
            topology.run(
                "witness", "keygen", "--name", f"{name}.test/w", "--key", str(key), "--json"
            )
        )
        topology.run("agency", "signing-key", "add", "--", agency, made["public_key"])
        witnesses[name] = {"token": token, "key": str(key), "vkey": made["verifier_key"]}
    keys = httpx.get(f"{base_url}/.well-known/exchange/keys").json()["keys"]
    log_key = next(k["note_verifier_key"] for k in keys if k["use"] == "checkpoint")

    # Reports keep arriving for the whole first half of the test.
    accepted: list[str] = []
    stop = threading.Event()

    def submit_until_stopped() -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {submitter}"}, timeout=30
        ) as client:
            while not stop.is_set():
                answer = client.post(
                    "/v1/reports",
                    json={
                        "type": "village-early-warning",
                        "payload": PAYLOAD,
                        "allow_no_recipient": True,
                    },
                )
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json()["id"])

    load = threading.Thread(target=submit_until_stopped, daemon=True)
    load.start()
    try:
        for name, witness in witnesses.items():
            topology.spawn(
                f"witness-{name}",
                "witness", "run", "--hub", base_url, "--log-key", log_key,
                "--name", f"{name}.test/w", "--key", witness["key"],
                "--state", str(tmp_path / f"{name}.state.json"), "--interval", "0.2", "--json",
                env={"EXCHANGE_TOKEN": witness["token"]},
            )  # fmt: skip

        def cosigned_rounds(name: str) -> int:
            return sum(1 for line in json_lines(topology, f"witness-{name}") if line["cosigned"])

        wait_until(
            lambda: all(cosigned_rounds(name) >= 3 for name in WITNESSES) and len(accepted) > 20,
            what="both witnesses cosigning a growing log",
            deadline_s=60,
        )
        audit_token = witnesses["bp3mi"]["token"]
        verify = [
            "audit", "verify", "--hub", base_url, "--log-key", log_key,
            "--witness", witnesses["bp3mi"]["vkey"], "--witness", witnesses["polda"]["vkey"],
            "--quorum", "2", "--json",
        ]  # fmt: skip
        during = json.loads(topology.run(*verify, env={"EXCHANGE_TOKEN": audit_token}))
        assert during["ok"] is True
        assert sorted(during["cosigned_by"]) == [f"{name}.test/w" for name in sorted(WITNESSES)]
        assert 0 < during["witnessed_size"] <= during["size"]
    finally:
        stop.set()
        load.join(timeout=60)
    assert accepted, "no report was accepted while the witnesses ran"

    # Quiet now: the integrator catches up, both witnesses cosign the final checkpoint, and
    # from then on they find nothing new, round after round: their cosignatures add nothing.
    def settled() -> bool:
        size = checkpoint_size(base_url, audit_token)
        last = [json_lines(topology, f"witness-{name}")[-1] for name in WITNESSES]
        return all(line["size"] == size and not line["cosigned"] for line in last)

    wait_until(settled, what="both witnesses at the final checkpoint", deadline_s=60)
    final = checkpoint_size(base_url, audit_token)
    rounds = {name: len(json_lines(topology, f"witness-{name}")) for name in WITNESSES}
    wait_until(
        lambda: all(len(json_lines(topology, f"witness-{n}")) >= rounds[n] + 5 for n in WITNESSES),
        what="five more witness rounds",
        deadline_s=30,
    )
    for name in WITNESSES:
        later = json_lines(topology, f"witness-{name}")[rounds[name] :]
        assert all(line["size"] == final and not line["cosigned"] for line in later), later
    assert checkpoint_size(base_url, audit_token) == final

    after = json.loads(topology.run(*verify, env={"EXCHANGE_TOKEN": audit_token}))
    assert after["size"] == after["witnessed_size"] == final
    for name in WITNESSES:
        assert topology.processes[f"witness-{name}"].poll() is None, topology.log(f"witness-{name}")
