"""Hub processes started as an operator would (``python -m exchange ...``), each logging
to a file of its own, for tests that need real processes: the topology, live witnesses,
the soak."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import wait_until

START_DEADLINE_S = 60.0


class Topology:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "exchange", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout.decode()

    def spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "exchange", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(base_url: str) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, what=f"{base_url} ready", deadline_s=START_DEADLINE_S)
