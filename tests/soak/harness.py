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
from datetime import UTC, datetime
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
    counts: dict[str, int] = field(default_factory=dict)  # what each fault did

    def lines(self) -> list[str]:
        return [
            f"accepted {self.accepted}, stored {self.stored}, deliveries {self.deliveries}: "
            f"delivered {self.delivered}, repeated (same id) {self.repeated}, dead {self.dead}, "
            f"lost {self.lost}",
            f"dead by reason: {dict(self.dead_reasons)}",
            f"answers that were not 2xx (sent again with their keys): {dict(self.refused)}",
            "phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.phases.items()),
            "faults: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()),
            *[f"PROBLEM: {p}" for p in self.problems],
        ]


class Aborted(Exception):
    """The soak stops: an answer no careful client could retry, or the run gave up."""


class Client:
    """A careful agency client: every submission carries an idempotency key, and whatever
    was not answered 2xx (a 429 or 503, a dropped connection) is sent again with the same
    key, to the other API process. Any other answer stops the soak."""

    def __init__(self, apis: list[str], token: str, tally: Tally, abort: threading.Event) -> None:
        self.abort = abort
        self.apis = apis
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tally = tally
        self.accepted: dict[str, str] = {}  # idempotency key -> report id
        self.lock = threading.Lock()
        self.turn = 0

    def _api(self) -> str:
        if self.abort.is_set():
            raise Aborted("the soak was stopped")
        self.turn += 1
        return self.apis[self.turn % len(self.apis)]

    def _refused(self, status: int, what: str) -> None:
        self.tally.refused[status] += 1
        if status not in (429, 503):
            raise Aborted(f"{what}: answered {status}")

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
            self._refused(answer.status_code, f"single {key}: {answer.text}")
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
                self._refused(answer.status_code, f"bulk: {answer.text}")
                time.sleep(0.2)
                continue
            left = []
            for record in map(json.loads, answer.text.splitlines()):
                key = pending[record["line"] - 1]
                if 200 <= record["status"] < 300:
                    self._accept(key, str(record["result"]["id"]))
                else:
                    self._refused(record["status"], f"bulk line {key}: {record}")
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
        self.pause_load = threading.Event()
        self.abort = threading.Event()
        self.inbox_seen: Counter[str] = Counter()  # ids the inbox reader was handed
        self.webhook_caught_up_at: datetime | None = None

    # --- setting up ------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Soak]:
        """Everything started in turn, and whatever was started stopped again, however the
        run ends."""
        with contextlib.ExitStack() as started:
            started.callback(shutil.rmtree, self.postgres_dir, ignore_errors=True)
            self.postgres.start()
            started.callback(self._stop_postgres)
            self.redis.start()
            started.callback(self.redis.stop)
            self._mount_drop()
            started.callback(subprocess.run, ["umount", "-l", str(self.drop)], check=False)
            started.enter_context(running_receiver(self.receiver))
            self.database_url = self.postgres.create_database("soak")
            env = {
                **os.environ,
                "EXCHANGE_DATABASE_URL": self.database_url,
                "EXCHANGE_BROKER_URL": self.redis.url,
                "EXCHANGE_KEY_DIR": str(self.work / "keys"),
                "EXCHANGE_LOG_JSON": "true",
                "EXCHANGE_FILEDROP_ROOT": str(self.drop),
                "EXCHANGE_WEBHOOK_ALLOW_NETWORKS": '["127.0.0.0/8"]',
                # Retries every 2 s, 120 times: longer than any fault here lasts.
                "EXCHANGE_DELIVERY_SCHEDULE_S": json.dumps([0] + [2.0] * 120),
                "EXCHANGE_DELIVERY_TIMEOUT_S": "2",
                "EXCHANGE_DELIVERY_BACKOFF_FLOOR_S": "0.5",
                "EXCHANGE_SWEEP_INTERVAL_S": "1",
                "EXCHANGE_SUBMISSIONS_PER_MINUTE_PER_KEY": "1000000",
                "EXCHANGE_REQUESTS_PER_MINUTE_PER_KEY": "1000000",
            }
            self.topology = Topology(env, self.work)
            started.callback(self.topology.stop_all)
            self._set_up()
            yield self

    def _stop_postgres(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.postgres.stop()

    def _mount_drop(self) -> None:
        """The file-drop root on a small file system of its own, so that it can fill up."""
        self.drop.mkdir()
        size = 64 * 1024 * 1024 + self.plan.reports * 16 * 1024
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(self.drop)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mounted.returncode != 0:
            raise RuntimeError(
                f"the soak mounts a tmpfs for the file drop (root with CAP_SYS_ADMIN): "
                f"{mounted.stderr.strip()}"
            )

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
        self.client = Client(
            self.apis, self._token("pimpasa-soak", "submit"), self.tally, self.abort
        )

    # --- load and the inbox reader ------------------------------------------------------------

    def _load(self) -> None:
        """Batches at the plan's rate while the faults run, then as fast as it goes until
        the plan's count is reached; every fifth batch as single submissions, of which
        every third is sent twice."""
        number = 0
        started = time.monotonic()
        while not (self.stop_load.is_set() and len(self.client.accepted) >= self.plan.reports):
            if self.pause_load.is_set():
                self.stop_load.wait(0.2)
                continue
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
        """Read the inbox and acknowledge what it holds, as a recipient would; an item
        counts as received when listed (an acknowledgement whose answer is lost is made
        again when the lease ends and the item comes back)."""
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
                    self.inbox_seen[item["delivery_id"]] += 1
                    httpx.post(
                        f"{api}/v1/deliveries/{item['delivery_id']}/ack",
                        json={},
                        headers=headers,
                        timeout=30,
                    )
                if not items:
                    stop.wait(0.5)
            except httpx.TransportError:
                stop.wait(0.5)
            except Exception as error:
                self.tally.problems.append(f"inbox reader: {type(error).__name__}: {error}")
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
        """worker-a dies while it is delivering: once it has made attempts and some
        delivery is held by a worker."""
        pid = self.topology.processes["worker-a"].pid
        wait_until(
            lambda: bool(
                self._query(
                    "SELECT 1 FROM delivery_attempt WHERE worker LIKE %s LIMIT 1", (f"%:{pid}",)
                )
                and self._query("SELECT 1 FROM delivery WHERE state = 'in_flight' LIMIT 1")
            ),
            what="worker-a delivering",
            deadline_s=300,
        )
        self._restart("worker-a", "worker", "--threads", "4")
        self._grown_by(self.plan.bulk_lines)

    def kill_an_api_in_a_bulk(self) -> None:
        """api-b dies with a bulk body half sent; the client sends the same lines again
        and gets, for the lines api-b had committed, the answers it lost."""
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
        self.tally.counts["killed bulk: lines committed before the kill"] = len(committed)

    def _committed(self, prefix: str) -> dict[str, str]:
        rows = self._query(
            "SELECT key, response FROM idempotency_record WHERE key LIKE %s", (prefix,)
        )
        return {key: json.loads(response)["id"] for key, response in rows}

    def redis_down(self) -> None:
        before = len(self.client.accepted)
        self.redis.stop()
        time.sleep(self.plan.redis_down_s)  # the outage itself: reports keep coming
        self.tally.counts["reports accepted while Redis was down"] = (
            len(self.client.accepted) - before
        )
        self.redis.start()
        if len(self.client.accepted) == before:
            self.tally.problems.append("no report was accepted while Redis was down")
        self._grown_by(self.plan.bulk_lines)

    def postgres_restart(self) -> None:
        self.postgres.stop()  # immediate: as if its processes crashed
        self.postgres.serve()
        self._grown_by(self.plan.bulk_lines)

    def webhook_caught_up(self) -> None:
        """A pause in the load until every webhook delivery so far is delivered: the faults
        before (a worker, an API, Redis, PostgreSQL) lost none of them. Only deliveries made
        after this may die of the 410 to come."""
        self.pause_load.set()
        try:
            wait_until(
                lambda: (
                    not self._query(
                        "SELECT 1 FROM delivery WHERE connector = 'webhook' "
                        "AND state <> 'delivered' LIMIT 1"
                    )
                ),
                what="every webhook delivery so far delivered",
                deadline_s=self.plan.settle_s,
            )
            self.webhook_caught_up_at = datetime.now(UTC)
        finally:
            self.pause_load.clear()
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
        attempts = self._query(
            "SELECT count(*) FILTER (WHERE a.status_code = 500), "
            "count(*) FILTER (WHERE a.status_code IS NULL AND a.outcome = 'retry') "
            "FROM delivery_attempt a JOIN delivery d ON d.id = a.delivery_id "
            "WHERE d.connector = 'webhook'"
        )
        errors, timeouts = attempts[0]
        self.tally.counts["webhook attempts answered 500"] = errors
        self.tally.counts["webhook attempts timed out"] = timeouts
        if not errors or not timeouts:
            self.tally.problems.append("the subscriber's 500s or its hanging were never seen")

    def disk_fills_up(self) -> None:
        filler = self.drop / "filler"
        with filler.open("wb") as handle, contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        time.sleep(self.plan.disk_full_s)
        filler.unlink()
        full = self._query(
            "SELECT count(*) FROM delivery_attempt a JOIN delivery d ON d.id = a.delivery_id "
            "WHERE d.connector = 'filedrop' AND a.error LIKE %s",
            ("%No space left%",),
        )[0][0]
        self.tally.counts["file-drop attempts refused by the full disk"] = full
        if not full:
            self.tally.problems.append("no file-drop attempt met the full disk")
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
        """The faults in turn under load, the drain, then the accounts; a run that fails
        part way still gives its accounts, with the failure among the problems."""
        load = threading.Thread(target=self._load_until_stopped, daemon=True)
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
                self.webhook_caught_up,
                self.subscriber_misbehaves,
                self.disk_fills_up,
            ):
                begun = time.monotonic()
                fault()
                self.tally.phases[fault.__name__] = time.monotonic() - begun
            self.stop_load.set()
            load.join(timeout=self.plan.settle_s)
            self.tally.phases["load"] = time.monotonic() - started
            begun = time.monotonic()
            wait_until(
                self._settled,
                what="every delivery delivered or dead",
                deadline_s=self.plan.settle_s,
            )
            self.tally.phases["drain"] = time.monotonic() - begun
        except Exception as error:
            self.tally.problems.insert(0, f"the run stopped: {type(error).__name__}: {error}")
        finally:
            self.stop_load.set()
            self.abort.set()
            stop_reading.set()
            reader.join(timeout=60)
            load.join(timeout=60)
        self._account()
        return self.tally

    def _load_until_stopped(self) -> None:
        try:
            self._load()
        except Aborted as stopped:
            if not self.abort.is_set():  # not the end of the run: a refusal
                self.tally.problems.append(f"the load stopped: {stopped}")
                self.abort.set()

    def _settled(self) -> bool:
        due = self._query(
            "SELECT count(*) FROM delivery WHERE state IN ('pending', 'in_flight', 'retrying') "
            "OR (connector = 'inbox' AND state = 'delivered')"
        )
        return int(due[0][0]) == 0

    def _account_events(self, stored: set[str], deliveries: list[tuple[Any, ...]]) -> None:
        """One event per action: a report.submitted per report; per delivery one
        delivery.delivered (delivered ones), one delivery.dead (dead ones), one
        delivery.acknowledged (acknowledged ones), as many delivery.retrying as retried
        attempts; one subscription.disabled for the 410."""
        problems = self.tally.problems
        per: Counter[tuple[str, str]] = Counter()
        for action, canonical in self._query(
            "SELECT action, canonical FROM audit_event WHERE action IN ('report.submitted', "
            "'delivery.delivered', 'delivery.dead', 'delivery.acknowledged', "
            "'delivery.retrying', 'subscription.disabled')"
        ):
            event = json.loads(bytes(canonical))
            about = (
                event["subject"]
                if action in ("report.submitted", "subscription.disabled")
                else event["details"]["delivery"]
            )
            per[(action, about)] += 1
        if {subject.removeprefix("report:") for a, subject in per if a == "report.submitted"} != (
            stored
        ) or any(n != 1 for (a, _), n in per.items() if a == "report.submitted"):
            problems.append("report.submitted is not one event per stored report")
        retried = dict(
            self._query(
                "SELECT delivery_id, count(*) FROM delivery_attempt WHERE outcome = 'retry' "
                "GROUP BY delivery_id"
            )
        )
        for delivery_id, _report, connector, state, _error, _made in deliveries:
            expected = {
                # An inbox delivery is delivered as routed: no attempt is recorded.
                "delivery.delivered": int(
                    state in ("delivered", "acknowledged") and connector != "inbox"
                ),
                "delivery.dead": int(state == "dead"),
                "delivery.acknowledged": int(state == "acknowledged"),
                "delivery.retrying": retried.get(delivery_id, 0),
            }
            found = {action: per[(action, delivery_id)] for action in expected}
            if found != expected:
                problems.append(f"events of delivery {delivery_id} ({connector}): {found}")
        disabled = sum(n for (a, _), n in per.items() if a == "subscription.disabled")
        if disabled != 1:
            problems.append(f"{disabled} subscription.disabled events for one 410")

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
            "inbox": self.inbox_seen,
            "filedrop": Counter(
                path.name.removesuffix(".json")
                for path in (self.drop / "dinsos-soak" / "inbound").glob("*.json")
            ),
        }
        rows = self._query(
            "SELECT id, report_id, connector, state, last_error, created_at FROM delivery"
        )
        tally.deliveries = len(rows)
        known: dict[str, set[str]] = {name: set() for name in seen}
        per_report: Counter[tuple[str, str]] = Counter()
        caught_up = self.webhook_caught_up_at
        for delivery_id, report_id, connector, state, last_error, created_at in rows:
            known[connector].add(delivery_id)
            per_report[(report_id, connector)] += 1
            if state in ("delivered", "acknowledged") and seen[connector][delivery_id]:
                tally.delivered += 1
                tally.repeated += seen[connector][delivery_id] - 1
            elif (
                state == "dead"
                and connector == "webhook"
                and WEBHOOK_GONE in (last_error or "")
                and caught_up is not None
                and created_at > caught_up
            ):
                tally.dead += 1
                tally.dead_reasons[last_error] += 1
            else:
                tally.lost += 1
                due_at, attempts = self._query(
                    "SELECT due_at, attempts FROM delivery WHERE id = %s", (delivery_id,)
                )[0]
                tally.problems.append(
                    f"delivery {delivery_id} ({connector}, made {created_at}): {state}, "
                    f"{attempts} attempt(s), due {due_at}, {last_error}"
                )
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

        self._account_events(stored, rows)
        self.topology.run("audit", "integrate")
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
        events = self._query("SELECT count(*) FROM audit_event")[0][0]
        if not verified["ok"] or verified["size"] != events:
            tally.problems.append(f"audit verify: {verified}, {events} events recorded")
        for name, process in self.topology.processes.items():
            if process.poll() is not None:
                tally.problems.append(f"{name} exited with {process.returncode}")
