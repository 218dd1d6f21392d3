"""What the benchmarks share: the report they submit, a demo hub's keys, free ports and
waiting for a server to answer."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
# The village early warning every bench submits (a real example from the shared schemas).
WARNING = json.loads(
    (
        REPO
        / "schemas"
        / "village-early-warning"
        / "examples"
        / "valid"
        / "calo-group-departure.json"
    ).read_text()
)

# Settings every bench gives the hub: it measures the hub's work, not the per-key rate
# limits or one client address's share of the places (all the load comes from loopback).
UNLIMITED_CLIENT = {
    "EXCHANGE_LOG_LEVEL": "WARNING",
    "EXCHANGE_SUBMISSIONS_PER_MINUTE_PER_KEY": "100000000",
    "EXCHANGE_REQUESTS_PER_MINUTE_PER_KEY": "100000000",
    "EXCHANGE_MAX_REQUESTS_PER_CLIENT": "100000",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def demo_tokens(env: dict[str, str], work: Path) -> dict[str, str]:
    """``exchange init --demo`` in ``work``; the API token of each demo agency that has one."""
    init = json.loads(
        subprocess.run(
            [sys.executable, "-m", "exchange", "init", "--demo", "--json"],
            env=env,
            check=True,
            capture_output=True,
            cwd=work,
        ).stdout
    )
    return {a["id"]: a["api_key"]["token"] for a in init["agencies"] if a["api_key"]}


@contextmanager
def running(
    command: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for the length of the block, its output discarded."""
    process = subprocess.Popen(
        list(command), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def serving_hub(env: dict[str, str], work: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``exchange serve`` (its settings in ``env``), once it answers: (base URL, process)."""
    port = free_port()
    with running(
        [sys.executable, "-m", "exchange", "serve", "--port", str(port)], env=env, cwd=work
    ) as process:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/healthz")
        yield base, process


def wrk(
    url: str, script: str, *, seconds: float, connections: int, work: Path
) -> tuple[int, float]:
    """(2xx answers, seconds) of a ``wrk`` run (a C load generator: a Python client would
    measure itself) with the Lua ``script``; non-2xx answers are reported."""
    if shutil.which("wrk") is None:
        raise SystemExit("this bench needs wrk: apt-get install wrk")
    path = work / "load.lua"
    path.write_text(script)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(path), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = re.search(r"(\d+) requests in ([0-9.]+)(m?s)", output)
    assert total, output
    elapsed = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed = int(bad.group(1)) if bad else 0
    if failed:
        print(f"  ({failed} answers were not 2xx)")
    return int(total.group(1)) - failed, elapsed


def production_servers(work: Path, stack: ExitStack) -> dict[str, str]:
    """PostgreSQL and Redis started in ``work`` for the length of ``stack``: the settings
    that point a hub at them."""
    sys.path.insert(0, str(REPO))
    from tests.servers import PostgresServer, RedisServer, postgres_bin_dir

    bin_dir, redis_server = postgres_bin_dir(), shutil.which("redis-server")
    if bin_dir is None or redis_server is None:
        raise SystemExit("this bench needs PostgreSQL and redis-server installed")
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user runs the cluster in it
    postgres = PostgresServer(bin_dir, work / "pg")
    postgres.start()
    stack.callback(postgres.stop)
    redis = RedisServer(redis_server)
    redis.start()
    stack.callback(redis.stop)
    return {
        "EXCHANGE_DATABASE_URL": postgres.create_database("bench"),
        "EXCHANGE_BROKER_URL": redis.url,
    }
