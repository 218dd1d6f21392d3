"""Submission benchmark: the hub (embedded SQLite, in-process worker) against a bare FastAPI
echo app on the same uvicorn settings, driven by the same concurrent load in the same run;
then one large bulk submission.

    .venv/bin/python bench/submit.py                  # 10 s per target, 32 connections
    .venv/bin/python bench/submit.py --seconds 5 --bulk-lines 20000

Targets (from the submission issue): single submit >= 50 % of the echo's requests/s;
bulk >= 20,000 reports/s. Each server's CPU time per request is printed beside its rate:
on a shared machine the rates move with the neighbours' load from one run to the next, the
CPU a request costs much less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from harness import UNLIMITED_CLIENT, WARNING, demo_tokens, free_port, wait_ready, wrk

ECHO_APP = """
from typing import Any
from fastapi import FastAPI
app = FastAPI()

@app.post("/v1/reports", status_code=202)
def echo(body: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "type": body.get("type")}
"""


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


def drive(url: str, token: str | None, *, seconds: float, connections: int, work: Path) -> float:
    """2xx answers a second that ``wrk`` gets from ``url``."""
    body = json.dumps(
        {"type": "village-early-warning", "payload": WARNING, "allow_no_recipient": True}
    )
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    script = WRK_SCRIPT.format(body=json.dumps(body), auth=auth)
    answered, elapsed = wrk(url, script, seconds=seconds, connections=connections, work=work)
    return answered / elapsed


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive_measured(
    url: str, token: str | None, *, seconds: float, connections: int, work: Path, server: int
) -> tuple[float, float]:
    """:func:`drive`'s rate, and the milliseconds of CPU the ``server`` process used per
    answer: on a shared machine the rate moves with the neighbours' load, the CPU an
    answer costs much less."""
    used = cpu_seconds(server)
    rate = drive(url, token, seconds=seconds, connections=connections, work=work)
    return rate, (cpu_seconds(server) - used) * 1000 / max(rate * seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--bulk-lines", type=int, default=20_000)
    args = parser.parse_args()
    exchange = [sys.executable, "-m", "exchange"]
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as scratch:
        work = Path(scratch)
        env = {
            **os.environ,
            "EXCHANGE_DATABASE_URL": f"sqlite:///{work / 'hub.db'}",
            "EXCHANGE_KEY_DIR": str(work / "keys"),
            **UNLIMITED_CLIENT,
        }
        token = demo_tokens(env, work)["pimpasa-tanjakan-mekar"]
        headers = {"Authorization": f"Bearer {token}"}
        (work / "echo_app.py").write_text(ECHO_APP)

        hub_port, echo_port = free_port(), free_port()
        uvicorn_flags = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
        servers = [
            subprocess.Popen(
                [*exchange, "serve", "--port", str(hub_port)],
                env=env,
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "echo_app:app",
                    "--port",
                    str(echo_port),
                    *uvicorn_flags,
                ],
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            wait_ready(f"http://127.0.0.1:{hub_port}/healthz")
            wait_ready(f"http://127.0.0.1:{echo_port}/docs")
            print(f"single submit, {args.connections} connections, {args.seconds} s each (wrk):")
            hub_rate, hub_cpu = drive_measured(
                f"http://127.0.0.1:{hub_port}/v1/reports",
                token,
                seconds=args.seconds,
                connections=args.connections,
                work=work,
                server=servers[0].pid,
            )
            echo_rate, echo_cpu = drive_measured(
                f"http://127.0.0.1:{echo_port}/v1/reports",
                None,
                seconds=args.seconds,
                connections=args.connections,
                work=work,
                server=servers[1].pid,
            )
            print(f"  hub  {hub_rate:8.0f} req/s   {hub_cpu:6.2f} ms CPU a request")
            print(
                f"  echo {echo_rate:8.0f} req/s   {echo_cpu:6.2f} ms CPU a request"
                "   (baseline: same body, same server settings)"
            )
            print(
                f"  hub/echo = {hub_rate / echo_rate:.2f}   target >= 0.50"
                f"   (CPU a request, echo/hub: {echo_cpu / hub_cpu:.2f})"
            )

            lines = b"".join(
                orjson.dumps(
                    {
                        "type": "village-early-warning",
                        "payload": {**WARNING, "persons_at_risk": {"count": n % 10_000}},
                        "allow_no_recipient": True,
                    }
                )
                + b"\n"
                for n in range(args.bulk_lines)
            )
            started = time.monotonic()
            response = httpx.post(
                f"http://127.0.0.1:{hub_port}/v1/reports:bulk",
                content=lines,
                headers={**headers, "Content-Type": "application/x-ndjson"},
                timeout=600,
            )
            elapsed = time.monotonic() - started
            accepted = sum(1 for line in response.text.splitlines() if '"status":202' in line)
            print(
                f"bulk: {accepted}/{args.bulk_lines} accepted in {elapsed:.2f} s = "
                f"{accepted / elapsed:.0f} reports/s   target >= 20000;"
                f" ratio to single-submit rate {accepted / elapsed / hub_rate:.1f}"
            )
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
