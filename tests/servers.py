"""Throwaway PostgreSQL and Redis servers for the test suite, on loopback and random ports.

The suite starts its own servers from the installed binaries (Debian's ``postgresql`` and
``redis-server`` packages), so the README's test command needs no running services. Where
the binaries are missing a test skips with the reason, except under ``CI=true``, where it
fails: CI must run every test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import uvicorn

IN_CI = os.environ.get("CI") == "true"
STARTUP_DEADLINE_S = 30.0


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where no test may skip for a missing server."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: install it; .ci/run does)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, what: str, deadline_s: float) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` once the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {deadline_s} s")
        time.sleep(0.05)


def postgres_bin_dir() -> Path | None:
    configured = os.environ.get("EXCHANGE_TEST_PG_BIN")
    if configured:
        return Path(configured)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.insert(0, str(Path(found).resolve().parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class PostgresServer:
    """A private cluster in ``base_dir``. As root (CI), it runs as the ``postgres`` user,
    since PostgreSQL refuses to run as root."""

    def __init__(self, bin_dir: Path, base_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.port = free_port()
        self._as_user: list[str] = []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.base_dir, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        self.serve()

    def serve(self) -> None:
        """Start the initialised cluster (again, after :meth:`stop`)."""
        # Durability off: these clusters live for one test run. A durable one (the soak
        # crashes it on purpose) keeps synchronous commits: a commit answered is in the WAL
        # when the server process dies, as on a real server (fsync only guards against the
        # machine itself crashing, which no test does).
        options = (
            f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
            + ("" if self.durable else " -c synchronous_commit=off")
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.base_dir / "server.log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        clause = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"{clause}'.encode())
        return self.url(name)


class RedisServer:
    """A ``redis-server`` without persistence; can be stopped and started again on its port."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, what="redis-server answering", deadline_s=STARTUP_DEADLINE_S)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None


def redis_executable() -> str | None:
    return os.environ.get("EXCHANGE_TEST_REDIS_SERVER") or shutil.which("redis-server")


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The ASGI app on a real loopback socket (uvicorn in a thread); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="uvicorn started", deadline_s=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
