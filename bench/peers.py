"""The hub beside a peer: medallion, the OASIS TAXII 2.1 reference server (Python, Flask,
its in-memory backend), on the same machine in the same run, under the same workload.

    .venv/bin/pip install -e '.[bench]'      # medallion
    .venv/bin/python bench/peers.py           # 10 s of adds, 16 connections
    .venv/bin/python bench/peers.py --seconds 5 --connections 32

The workload, on each side in turn:
  add    objects for ``--seconds`` from ``--connections`` connections (wrk, a C load
         generator): the hub takes village early warnings (POST /v1/reports: validated,
         encrypted, audited, routed); medallion takes STIX 2.1 indicators of the same size
         (POST .../collections/{id}/objects/, one object per request, unique ids);
  poll   one consumer then reads everything that was added, 500 a page: the hub's police
         liaison pulls its inbox and acknowledges each page (the deliveries are left to
         reach the inbox first); the TAXII client pages through the collection.
Printed: objects added per second, objects read per second, and hub / medallion for both.
Goal (from the throughput issue): the hub adds at >= 3x medallion's rate, with the
durability (SQLite, fsync at checkpoints) and the audit trail that medallion's memory
backend lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from harness import (
    UNLIMITED_CLIENT,
    WARNING,
    demo_tokens,
    free_port,
    running,
    serving_hub,
    wait_ready,
    wrk,
)

PAGE = 500
TAXII = "application/taxii+json;version=2.1"
API_ROOT = "bench"
COLLECTION = str(uuid.uuid4())
TAXII_USER, TAXII_PASSWORD = "bench", "bench-only-password"
# The description pads an indicator to the size of the hub's report body.
INDICATOR = {
    "type": "indicator",
    "spec_version": "2.1",
    "created": "2026-11-30T00:00:00.000Z",
    "modified": "2026-11-30T00:00:00.000Z",
    "name": "Recruiter approaching villagers for undocumented departure",
    "pattern": "[phone-number:value = '+6281234567890']",
    "pattern_type": "stix",
    "valid_from": "2026-11-30T00:00:00Z",
}

# wrk: every request a new object id (thread number, request number), as TAXII needs.
WRK_UNIQUE = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "{taxii}"
wrk.headers["Accept"] = "{taxii}"
wrk.headers["Authorization"] = "{auth}"
request = function()
  counter = counter + 1
  local id = string.format("indicator--%08d-0000-4000-8000-%012d", tid, counter)
  return wrk.format(nil, "{path}", nil, string.format({template}, id))
end
"""
WRK_FIXED = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def hub_side(args: argparse.Namespace, work: Path) -> tuple[float, float]:
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": f"sqlite:///{work / 'hub.db'}",
        "EXCHANGE_KEY_DIR": str(work / "keys"),
        **UNLIMITED_CLIENT,
    }
    tokens = demo_tokens(env, work)
    with serving_hub(env, work) as (base, _):
        body = json.dumps(
            {"type": "village-early-warning", "payload": WARNING, "allow_no_recipient": True}
        )
        added, elapsed = wrk(
            f"{base}/v1/reports",
            WRK_FIXED.format(body=json.dumps(body), token=tokens["pimpasa-tanjakan-mekar"]),
            seconds=args.seconds,
            connections=args.connections,
            work=work,
        )
        _wait_delivered(work / "hub.db")
        headers = {"Authorization": f"Bearer {tokens['polda-banten']}"}
        read, started = 0, time.monotonic()
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while True:
                page = client.get("/v1/inbox", params={"limit": PAGE})
                page.raise_for_status()
                ids = [item["delivery_id"] for item in page.json()["items"]]
                if not ids:
                    break
                client.post("/v1/inbox/ack", json={"ids": ids}).raise_for_status()
                read += len(ids)
        polled = time.monotonic() - started
        # Every high-severity report reaches the police inbox, once. (wrk does not count
        # the requests still under way when it stops; the server may have taken them.)
        assert read >= added, f"added {added}, read {read}"
        return added / elapsed, read / polled


def _wait_delivered(database: Path) -> None:
    """Until no delivery is due: the inbox holds everything that was added."""
    deadline = time.monotonic() + 600
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        while time.monotonic() < deadline:
            (due,) = connection.execute(
                "SELECT count(*) FROM delivery WHERE state IN ('pending','in_flight','retrying')"
            ).fetchone()
            if due == 0:
                return
            time.sleep(0.5)
    raise TimeoutError("deliveries still due after 10 minutes")


def medallion_side(args: argparse.Namespace, work: Path) -> tuple[float, float]:
    medallion = shutil.which("medallion", path=str(Path(sys.executable).parent))
    if medallion is None:
        raise SystemExit("bench/peers.py needs medallion: .venv/bin/pip install -e '.[bench]'")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = {
        "/discovery": {
            "title": "bench",
            "default": f"{base}/{API_ROOT}/",
            "api_roots": [f"{base}/{API_ROOT}/"],
        },
        API_ROOT: {
            "information": {
                "title": "bench",
                "versions": [TAXII],
                "max_content_length": 10_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": COLLECTION,
                    "title": "reports",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (work / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module_class": "MemoryBackend",
            "module": "medallion.backends.memory_backend",
            "filename": str(work / "data.json"),
        },
        "users": {TAXII_USER: TAXII_PASSWORD},
        "taxii": {"max_page_size": PAGE},
    }
    (work / "medallion.json").write_text(json.dumps(config))
    auth = httpx.BasicAuth(TAXII_USER, TAXII_PASSWORD)
    path = f"/{API_ROOT}/collections/{COLLECTION}/objects/"
    command = [medallion, "--port", str(port), "--log-level", "ERROR", str(work / "medallion.json")]
    with running(command):
        wait_ready(f"{base}/taxii2/")
        size = len(json.dumps({"type": "village-early-warning", "payload": WARNING}))
        padded = {**INDICATOR, "description": ""}
        padded["description"] = "x" * max(0, size - len(json.dumps(padded)))
        template = json.dumps({"objects": [{**padded, "id": "%s"}]})
        added, elapsed = wrk(
            base + path,
            WRK_UNIQUE.format(
                taxii=TAXII,
                auth=_basic(auth),
                path=path,
                template=json.dumps(template),
            ),
            seconds=args.seconds,
            connections=args.connections,
            work=work,
        )
        read, started, cursor = 0, time.monotonic(), None
        with httpx.Client(base_url=base, auth=auth, timeout=600) as client:
            while True:
                params: dict[str, Any] = {"limit": PAGE}
                if cursor:
                    params["next"] = cursor
                page = client.get(path, params=params, headers={"Accept": TAXII})
                page.raise_for_status()
                envelope = page.json()
                read += len(envelope.get("objects", []))
                cursor = envelope.get("next")
                if not envelope.get("more"):
                    break
        polled = time.monotonic() - started
        assert read >= added, f"added {added}, read {read}"
        return added / elapsed, read / polled


def _basic(auth: httpx.BasicAuth) -> str:
    request = httpx.Request("GET", "http://bench/")
    return next(auth.auth_flow(request)).headers["Authorization"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exchange-peers-") as scratch:
        hub_work, medallion_work = Path(scratch, "hub"), Path(scratch, "medallion")
        hub_work.mkdir()
        medallion_work.mkdir()
        print(f"add for {args.seconds} s from {args.connections} connections, then poll:")
        hub_add, hub_poll = hub_side(args, hub_work)
        print(f"  hub        add {hub_add:8.0f}/s   poll {hub_poll:8.0f}/s")
        peer_add, peer_poll = medallion_side(args, medallion_work)
        print(f"  medallion  add {peer_add:8.0f}/s   poll {peer_poll:8.0f}/s")
        print(
            f"  hub/medallion: add {hub_add / peer_add:.2f}   poll {hub_poll / peer_poll:.2f}"
            "   goal: add >= 3"
        )


if __name__ == "__main__":
    main()
