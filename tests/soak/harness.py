"""The soak: the production topology (PostgreSQL, Redis, two API processes, two workers)
with a webhook, an inbox and a file-drop subscriber, taking thousands of reports (bulk and
single, some resent with their idempotency keys) while, in turn, a worker is killed, an API
process is killed in the middle of a bulk body, Redis goes down, PostgreSQL is restarted,
the webhook subscriber answers 500s, then hangs, then says 410, and the file-drop disk
fills up. Then every answer is accounted for: what was accepted is stored once, what was
stored is delivered (under one envelope id) or dead for its documented reason, the audit
log verifies. ``tests/soak`` runs it small in CI; ``bench/soak.py`` runs it at 10,000.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.delivery.receiver import Receiver, running_receiver
from tests.processes import Topology, wait_ready
from tests.servers import PostgresServer, RedisServer, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = json.loads(
    (REPO / "schemas/village-early-warning/examples/valid/calo-group-departure.json").read_text()
)
WEBHOOK_GONE = "the receiver answered 410 Gone"


@dataclass(frozen=True)
class Plan:
    """How big and how long: ``reports`` at least, ``rate`` a second while faults run."""

    reports: int
    rate: float
    bulk_lines: int
    killed_bulk_lines: int  # more than one batch (500 lines), so one commits before the kill
    redis_down_s: float
    subscriber_errors_s: float
    subscriber_hangs_s: float
    disk_full_s: float
    settle_s: float  # how long the backlog may take to drain once the load stops


CI_PLAN = Plan(
    reports=1_500, rate=30, bulk_lines=50, killed_bulk_lines=600, redis_down_s=10,
    subscriber_errors_s=10, subscriber_hangs_s=6, disk_full_s=6, settle_s=300,
)  # fmt: skip
FULL_PLAN = Plan(
    reports=10_000, rate=60, bulk_lines=200, killed_bulk_lines=800, redis_down_s=30,
    subscriber_errors_s=60, subscriber_hangs_s=20, disk_full_s=20, settle_s=3600,
)  # fmt: skip


@dataclass
class Tally:
    accepted: int = 0
    stored: int = 0
    deliveries: int = 0
    delivered: int = 0
    repeated: int = 0
    dead: int = 0
    lost: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"accepted {self.accepted}, stored {self.stored}, deliveries {self.deliveries}: "
            f"delivered {self.delivered}, repeated (same id) {self.repeated}, dead {self.dead}, "
            f"lost {self.lost}",
            f"dead by reason: {dict(self.dead_reasons)}",
            f"answers that were not 2xx (sent again with their keys): {dict(self.refused)}",
            "phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.phases.items()),
            *[f"PROBLEM: {p}" for p in self.problems],
        ]


class Client:
    """A careful agency client: every submission carries an idempotency key, and whatever
    was not answered 2xx (an error, a dropped connection) is sent again with the same key,
    to the other API process."""

    def __init__(self, apis: list[str], token: str, tally: Tally) -> None:
        self.apis = apis
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tally = tally
        self.accepted: dict[str, str] = {}  # idempotency key -> report id
        self.lock = threading.Lock()
        self.turn = 0

    def _api(self) -> str:
        self.turn += 1
        return self.apis[self.turn % len(self.apis)]

    def _accept(self, key: str, report_id: str) -> None:
        with self.lock:
            first = self.accepted.setdefault(key, report_id)
        if first != report_id:
            self.tally.problems.append(f"key {key} answered {report_id}, first {first}")

    def single(self, key: str) -> str:
        body = {"type": "village-early-warning", "payload": PAYLOAD}
        while True:
            try:
                answer = httpx.post(
                    f"{self._api()}/v1/reports",
                    json=body,
                    headers={**self.headers, "Idempotency-Key": key},
                    timeout=30,
                )
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if answer.status_code == 202:
                report_id = str(answer.json()["id"])
                self._accept(key, report_id)
                return report_id
            self.tally.refused[answer.status_code] += 1
            if answer.status_code not in (429, 503):
                self.tally.problems.append(f"single {key}: {answer.status_code} {answer.text}")
            time.sleep(0.2)

    def bulk(self, keys: list[str]) -> dict[str, str]:
        pending = list(keys)
        while pending:
            body = "".join(
                json.dumps(
                    {"type": "village-early-warning", "payload": PAYLOAD, "idempotency_key": key}
                )
                + "\n"
                for key in pending
            )
            try:
                answer = httpx.post(
                    f"{self._api()}/v1/reports:bulk",
                    content=body,
                    headers={**self.headers, "Content-Type": "application/x-ndjson"},
                    timeout=120,
                )
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if answer.status_code != 200:
                self.tally.refused[answer.status_code] += 1
                if answer.status_code not in (429, 503):
                    self.tally.problems.append(f"bulk: {answer.status_code} {answer.text}")
                time.sleep(0.2)
                continue
            left = []
            for record in map(json.loads, answer.text.splitlines()):
                key = pending[record["line"] - 1]
                if 200 <= record["status"] < 300:
                    self._accept(key, str(record["result"]["id"]))
                else:
                    self.tally.refused[record["status"]] += 1
                    if record["status"] not in (429, 503):
                        self.tally.problems.append(f"bulk line {key}: {record}")
                    left.append(key)
            pending = left
            if pending:
                time.sleep(0.2)
        return {key: self.accepted[key] for key in keys}


class Soak:
    def __init__(self, plan: Plan, work: Path, postgres_bin: Path, redis_server: str) -> None:
        self.plan = plan
        self.work = work
        self.tally = Tally()
        # A folder of its own outside the test's (which only root may enter): as root the
        # cluster runs as the postgres user.
        self.postgres_dir = Path(tempfile.mkdtemp(prefix="exchange-soak-pg-"))
        self.postgres = PostgresServer(postgres_bin, self.postgres_dir, durable=True)
        self.redis = RedisServer(redis_server)
        self.receiver = Receiver()
        self.drop = work / "drop"
        self.stop_load = threading.Event()
        self.inbox_acked: Counter[str] = Counter()

    # --- setting up ------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Soak]:
        self.postgres.start()
        self.redis.start()
        self.drop.mkdir()
        # The file-drop root on a small file system of its own, so that it can fill up.
        size = 64 * 1024 * 1024 + self.plan.reports * 16 * 1024
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(self.drop)],
            check=True,
        )
        try:
            with running_receiver(self.receiver):
                self.database_url = self.postgres.create_database("soak")
                env = {
                    **os.environ,
                    "EXCHANGE_DATABASE_URL": self.database_url,
                    "EXCHANGE_BROKER_URL": self.redis.url,
                    "EXCHANGE_KEY_DIR": str(self.work / "keys"),
                    "EXCHANGE_LOG_JSON": "true",
                    "EXCHANGE_FILEDROP_ROOT": str(self.drop),
                    "EXCHANGE_WEBHOOK_ALLOW_NETWORKS": '["127.0.0.0/8"]',
                    # Retries every 2 s for 4 minutes: longer than any fault here lasts.
                    "EXCHANGE_DELIVERY_SCHEDULE_S": json.dumps([0] + [2.0] * 120),
                    "EXCHANGE_DELIVERY_TIMEOUT_S": "2",
                    "EXCHANGE_DELIVERY_BACKOFF_FLOOR_S": "0.5",
                    "EXCHANGE_SWEEP_INTERVAL_S": "1",
                    "EXCHANGE_SUBMISSIONS_PER_MINUTE_PER_KEY": "1000000",
                    "EXCHANGE_REQUESTS_PER_MINUTE_PER_KEY": "1000000",
                }
                self.topology = Topology(env, self.work)
                try:
                    self._set_up()
                    yield self
                finally:
                    self.topology.stop_all()
        finally:
            subprocess.run(["umount", "-l", str(self.drop)], check=False)
            self.redis.stop()
            with contextlib.suppress(subprocess.CalledProcessError):
                self.postgres.stop()
            shutil.rmtree(self.postgres_dir, ignore_errors=True)

    def _token(self, agency: str, scope: str) -> str:
        created = self.topology.run("agency", "key", "create", agency, "--scope", scope, "--json")
        return str(json.loads(created)["token"])

    def _set_up(self) -> None:
        init = json.loads(self.topology.run("init", "--json"))
        self.admin = init["agencies"][0]["api_key"]["token"]
        keys = init["published_keys"]["keys"]
        self.log_key = next(k["note_verifier_key"] for k in keys if k["use"] == "checkpoint")
        for agency, kind in (
            ("pimpasa-soak", "village"),
            ("polda-soak", "police"),
            ("bp3mi-soak", "bp3mi"),
            ("dinsos-soak", "social"),
        ):
            self.topology.run("agency", "add", agency, "--name", agency, "--kind", kind,
                              "--jurisdiction", "36")  # fmt: skip
        self.apis = []
        for name in ("api-a", "api-b"):
            port = free_port()
            self.topology.spawn(name, "serve", "--port", str(port))
            self.apis.append(f"http://127.0.0.1:{port}")
        self.ports = dict(zip(("api-a", "api-b"), self.apis, strict=True))
        for name in ("worker-a", "worker-b"):
            self.topology.spawn(name, "worker", "--threads", "4")
        for api in self.apis:
            wait_ready(api)
        subscriptions = {
            "polda-soak": {"connector": "webhook", "config": {"url": self.receiver.url}},
            "bp3mi-soak": {"connector": "inbox"},
            "dinsos-soak": {"connector": "filedrop", "config": {"directory": "inbound"}},
        }
        self.receivers: dict[str, str] = {}
        for agency, body in subscriptions.items():
            token = self._token(agency, "receive")
            self.receivers[agency] = token
            made = httpx.post(
                f"{self.apis[0]}/v1/subscriptions",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert made.status_code == 201, made.text
            if agency == "polda-soak":
                self.receiver.secret = made.json()["secrets"]["secret"]
        self.client = Client(self.apis, self._token("pimpasa-soak", "submit"), self.tally)

    # --- load and the inbox reader ------------------------------------------------------------

    def _load(self) -> None:
        """Batches at the plan's rate while the faults run, then as fast as it goes until
        the plan's count is reached; every fifth batch as single submissions, of which
        every third is sent twice."""
        number = 0
        started = time.monotonic()
        while not (self.stop_load.is_set() and len(self.client.accepted) >= self.plan.reports):
            keys = [f"soak-{number + i}" for i in range(self.plan.bulk_lines)]
            number += len(keys)
            if number // self.plan.bulk_lines % 5 == 0:
                for position, key in enumerate(keys):
                    first = self.client.single(key)
                    if position % 3 == 0 and self.client.single(key) != first:
                        self.tally.problems.append(f"resent {key} got another id")
            else:
                self.client.bulk(keys)
            if not self.stop_load.is_set():
                ahead = number / self.plan.rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop_load.wait(ahead)

    def _read_inbox(self, stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {self.receivers['bp3mi-soak']}"}
        turn = 0
        while not stop.is_set():
            turn += 1
            api = self.apis[turn % 2]
            try:
                page = httpx.get(f"{api}/v1/inbox?limit=100", headers=headers, timeout=30)
                if page.status_code != 200:
                    stop.wait(0.5)
                    continue
                items = page.json()["items"]
                for item in items:
                    acked = httpx.post(
                        f"{api}/v1/deliveries/{item['delivery_id']}/ack",
                        json={},
                        headers=headers,
                        timeout=30,
                    )
                    if acked.status_code == 200:
                        self.inbox_acked[item["delivery_id"]] += 1
                if not items:
                    stop.wait(0.5)
            except httpx.TransportError:
                stop.wait(0.5)

    # --- faults ---------------------------------------------------------------------------

    def _grown_by(self, count: int) -> None:
        target = len(self.client.accepted) + count
        wait_until(
            lambda: len(self.client.accepted) >= target,
            what=f"{count} more reports accepted",
            deadline_s=300,
        )

    def _restart(self, name: str, *args: str) -> None:
        process = self.topology.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.topology.spawn(name, *args)

    def kill_a_worker(self) -> None:
        self._restart("worker-a", "worker", "--threads", "4")
        self._grown_by(self.plan.bulk_lines)

    def kill_an_api_in_a_bulk(self) -> None:
        """api-b dies with a bulk body half sent; the client sends the same lines again
        (to api-a) and gets, for the lines api-b had committed, the answers it lost."""
        run = uuid.uuid4().hex[:8]
        keys = [f"killed-{run}-{i}" for i in range(self.plan.killed_bulk_lines)]
        release = threading.Event()

        def body() -> Iterator[bytes]:
            for position, key in enumerate(keys):
                if position == 510:  # one batch of 500 is in, and then some
                    release.wait(120)
                line = {"type": "village-early-warning", "payload": PAYLOAD, "idempotency_key": key}
                yield (json.dumps(line) + "\n").encode()

        lost_answer: list[BaseException] = []

        def send() -> None:
            try:
                httpx.post(
                    f"{self.ports['api-b']}/v1/reports:bulk",
                    content=body(),
                    headers={**self.client.headers, "Content-Type": "application/x-ndjson"},
                    timeout=120,
                )
            except httpx.TransportError as exc:
                lost_answer.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        prefix = f"killed-{run}-%"
        wait_until(
            lambda: len(self._committed(prefix)) >= 500,
            what="the first batch of the bulk committed",
            deadline_s=300,
        )
        port = self.ports["api-b"].rsplit(":", 1)[1]
        self._restart("api-b", "serve", "--port", port)
        release.set()
        sender.join(timeout=120)
        if not lost_answer:
            self.tally.problems.append("the killed bulk got an answer")
        committed = self._committed(prefix)
        wait_ready(self.ports["api-b"])
        again = self.client.bulk(keys)
        for key, report_id in committed.items():
            if again[key] != report_id:
                self.tally.problems.append(f"{key}: resent answer {again[key]}, first {report_id}")
        self.tally.phases["killed bulk: lines committed before the kill"] = len(committed)

    def _committed(self, prefix: str) -> dict[str, str]:
        rows = self._query(
            "SELECT key, response FROM idempotency_record WHERE key LIKE %s", (prefix,)
        )
        return {key: json.loads(response)["id"] for key, response in rows}

    def redis_down(self) -> None:
        self.redis.stop()
        time.sleep(self.plan.redis_down_s)  # the outage itself: reports keep coming
        self.redis.start()
        self._grown_by(self.plan.bulk_lines)

    def postgres_restart(self) -> None:
        self.postgres.stop()  # immediate: as if its processes crashed
        self.postgres.serve()
        self._grown_by(self.plan.bulk_lines)

    def subscriber_misbehaves(self) -> None:
        self.receiver.behaviour = lambda _id, _attempt: (500, {})
        time.sleep(self.plan.subscriber_errors_s)
        self.receiver.behaviour = lambda _id, _attempt: None  # hangs: the hub times out
        time.sleep(self.plan.subscriber_hangs_s)
        self.receiver.behaviour = lambda _id, _attempt: (410, {})
        wait_until(
            lambda: bool(self._query("SELECT 1 FROM subscription WHERE NOT active")),
            what="the webhook subscription disabled by its 410",
            deadline_s=120,
        )

    def disk_fills_up(self) -> None:
        filler = self.drop / "filler"
        with filler.open("wb") as handle, contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        time.sleep(self.plan.disk_full_s)
        filler.unlink()
        self._grown_by(self.plan.bulk_lines)

    # --- the run and its accounts -----------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        for _ in range(60):  # PostgreSQL may be restarting
            try:
                with psycopg.connect(self.database_url, connect_timeout=5) as db:
                    return list(db.execute(sql.encode(), params))
            except psycopg.OperationalError:
                time.sleep(0.5)
        raise TimeoutError("the database did not answer")

    def run(self) -> Tally:
        load = threading.Thread(target=self._load, daemon=True)
        stop_reading = threading.Event()
        reader = threading.Thread(target=self._read_inbox, args=(stop_reading,), daemon=True)
        started = time.monotonic()
        load.start()
        reader.start()
        try:
            for fault in (
                self.kill_a_worker,
                self.kill_an_api_in_a_bulk,
                self.redis_down,
                self.postgres_restart,
                self.subscriber_misbehaves,
                self.disk_fills_up,
            ):
                begun = time.monotonic()
                fault()
                self.tally.phases[fault.__name__] = time.monotonic() - begun
            self.stop_load.set()
            load.join()
            self.tally.phases["load"] = time.monotonic() - started
            begun = time.monotonic()
            wait_until(
                self._settled,
                what="every delivery delivered or dead",
                deadline_s=self.plan.settle_s,
            )
            self.tally.phases["drain"] = time.monotonic() - begun
        finally:
            self.stop_load.set()
            stop_reading.set()
            reader.join()
        self._account()
        return self.tally

    def _settled(self) -> bool:
        due = self._query(
            "SELECT count(*) FROM delivery WHERE state IN ('pending', 'in_flight', 'retrying') "
            "OR (connector = 'inbox' AND state = 'delivered')"
        )
        return int(due[0][0]) == 0

    def _account(self) -> None:
        tally = self.tally
        accepted = set(self.client.accepted.values())
        stored = {row[0] for row in self._query("SELECT id FROM report")}
        tally.accepted, tally.stored = len(accepted), len(stored)
        if len(accepted) != len(self.client.accepted):
            tally.problems.append("two idempotency keys answered with the same report id")
        tally.lost += len(accepted - stored) + len(stored - accepted)

        seen = {
            "webhook": Counter(self.receiver.accepted_ids()),
            "inbox": self.inbox_acked,
            "filedrop": Counter(
                path.name.removesuffix(".json")
                for path in (self.drop / "dinsos-soak" / "inbound").glob("*.json")
            ),
        }
        rows = self._query("SELECT id, report_id, connector, state, last_error FROM delivery")
        tally.deliveries = len(rows)
        known: dict[str, set[str]] = {name: set() for name in seen}
        per_report: Counter[tuple[str, str]] = Counter()
        for delivery_id, report_id, connector, state, last_error in rows:
            known[connector].add(delivery_id)
            per_report[(report_id, connector)] += 1
            if state in ("delivered", "acknowledged") and seen[connector][delivery_id]:
                tally.delivered += 1
                tally.repeated += seen[connector][delivery_id] - 1
            elif state == "dead" and connector == "webhook" and WEBHOOK_GONE in (last_error or ""):
                tally.dead += 1
                tally.dead_reasons[last_error] += 1
            else:
                tally.lost += 1
                tally.problems.append(f"delivery {delivery_id} ({connector}): {state} {last_error}")
        for connector, ids in seen.items():
            foreign = set(ids) - known[connector]
            if foreign:
                tally.problems.append(f"{connector} saw ids the hub never made: {len(foreign)}")
        if any(count > 1 for count in per_report.values()):
            tally.problems.append("a report has two deliveries to one subscription")
        for report_id in stored:
            for connector in ("inbox", "filedrop"):
                if per_report[(report_id, connector)] != 1:
                    tally.lost += 1
                    tally.problems.append(f"report {report_id} has no {connector} delivery")

        submitted = self._query(
            "SELECT count(*) FROM audit_event WHERE action = 'report.submitted'"
        )
        if int(submitted[0][0]) != len(stored):
            tally.problems.append(
                f"{submitted[0][0]} report.submitted events, {len(stored)} reports"
            )
        verified = json.loads(
            self.topology.run(
                "audit",
                "verify",
                "--hub",
                self.apis[0],
                "--log-key",
                self.log_key,
                "--json",
                env={"EXCHANGE_TOKEN": self.admin},
            )
        )
        if not verified["ok"]:
            tally.problems.append(f"audit verify: {verified}")
        for name, process in self.topology.processes.items():
            if process.poll() is not None:
                tally.problems.append(f"{name} exited with {process.returncode}")
