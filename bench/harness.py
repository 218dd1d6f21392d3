"""What the benchmarks share: free ports and waiting for a server to answer."""

from __future__ import annotations

import socket
import time

import httpx

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
