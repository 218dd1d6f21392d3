"""Load shedding: past its capacity and its queue the hub answers 503 with Retry-After at
once, waiting requests are served in order or refused after the longest wait, one client
address cannot hold every place, the liveness check always passes and the readiness check
has places of its own, and no place is lost whatever happens to a request
(bench/overload.py measures the hub under twice its peak)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from exchange.app import create_app
from exchange.middleware import Lane, ShedLoad
from exchange.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Gate:
    """An ASGI app whose requests wait until the test lets them through, noting the order."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.started.append(scope["path"])
        if scope["path"] not in ("/healthz", "/readyz"):
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def guarded(
    gate: Gate, *, capacity: int, queue: int, max_wait_s: float = 5, per_client: int = 100
) -> ShedLoad:
    return ShedLoad(
        gate,
        requests=Lane(capacity=capacity, queue=queue, max_wait_s=max_wait_s, per_client=per_client),
        operations=Lane(capacity=1, queue=0, max_wait_s=max_wait_s, per_client=1),
        operations_paths=frozenset({"/readyz"}),
        free=frozenset({"/healthz"}),
    )


def client(app: ShedLoad, address: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://hub")


def settled(shed: ShedLoad) -> None:
    """Every place given back: none at work, none waiting, none counted to a client."""
    for lane in (shed.requests, shed.operations):
        assert (lane.working, len(lane.waiting), lane.by_client) == (0, 0, {})


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (each request needs a few turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def started(
    http: httpx.AsyncClient, path: str
) -> asyncio.Task[httpx.Response]:  # a request under way
    return asyncio.create_task(http.get(path))


async def one_at_work(http: httpx.AsyncClient, gate: Gate) -> asyncio.Task[httpx.Response]:
    """A request holding the only place (capacity 1) until the gate opens."""
    holder = await started(http, "/holder")
    await until(lambda: gate.started == ["/holder"])
    return holder


def refused_as_overloaded(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "overloaded"
    assert "1 s" in error["message"]


async def test_past_capacity_and_queue_a_request_is_refused_at_once() -> None:
    gate = Gate()
    shed = guarded(gate, capacity=2, queue=1)
    async with client(shed) as http:
        working = [await started(http, f"/busy/{n}") for n in range(2)]
        await until(lambda: len(gate.started) == 2)
        queued = await started(http, "/queued")
        await until(lambda: len(shed.requests.waiting) == 1)
        refused_as_overloaded(await http.get("/refused"))  # answered while the others wait
        assert "/refused" not in gate.started
        assert (await http.get("/healthz")).status_code == 200  # never shed
        assert (await http.get("/readyz")).status_code == 200  # its own places
        gate.release.set()
        answers = await asyncio.gather(*working, queued)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert gate.started[-1] == "/queued"
    settled(shed)


async def test_waiting_requests_are_served_in_the_order_they_came() -> None:
    gate = Gate()
    shed = guarded(gate, capacity=1, queue=5)
    async with client(shed) as http:
        first = await started(http, "/first")
        await until(lambda: gate.started == ["/first"])
        waiting = []
        for n in range(5):
            waiting.append(await started(http, f"/waiting/{n}"))
            await until(lambda n=n: len(shed.requests.waiting) == n + 1)  # type: ignore[misc]
        gate.release.set()
        await asyncio.gather(first, *waiting)
    assert gate.started == ["/first", *(f"/waiting/{n}" for n in range(5))]
    settled(shed)


async def test_a_request_that_waits_too_long_is_refused_and_its_place_not_lost() -> None:
    gate = Gate()
    shed = guarded(gate, capacity=1, queue=3, max_wait_s=0.05)
    async with client(shed) as http:
        holder = await one_at_work(http, gate)
        refused_as_overloaded(await http.get("/impatient"))
        assert len(shed.requests.waiting) == 0
        gate.release.set()
        assert (await holder).status_code == 200
        assert (await http.get("/after")).status_code == 200
    settled(shed)


async def test_a_request_cancelled_while_waiting_gives_its_place_back() -> None:
    gate = Gate()
    shed = guarded(gate, capacity=1, queue=2)
    async with client(shed) as http:
        holder = await one_at_work(http, gate)
        gone = await started(http, "/gone")
        await until(lambda: len(shed.requests.waiting) == 1)
        gone.cancel()
        await until(lambda: len(shed.requests.waiting) == 0)
        gate.release.set()
        assert (await holder).status_code == 200
        assert (await http.get("/after")).status_code == 200
    settled(shed)


async def test_one_client_cannot_hold_every_place() -> None:
    """Slow bodies or a flood from one address take that address's share, not the hub."""
    gate = Gate()
    shed = guarded(gate, capacity=4, queue=4, per_client=2)
    async with client(shed, "10.0.0.66") as attacker, client(shed, "10.0.0.7") as agency:
        held = [await started(attacker, f"/slow/{n}") for n in range(2)]
        await until(lambda: len(gate.started) == 2)
        refused_as_overloaded(await attacker.get("/one-more"))
        served = await started(agency, "/report")
        await until(lambda: "/report" in gate.started)
        gate.release.set()
        assert (await served).status_code == 200
        assert [(await h).status_code for h in held] == [200, 200]
    settled(shed)


async def test_waiting_requests_count_against_their_client() -> None:
    gate = Gate()
    shed = guarded(gate, capacity=1, queue=4, per_client=2)
    async with client(shed, "10.0.0.66") as attacker, client(shed, "10.0.0.7") as agency:
        holder = await one_at_work(agency, gate)
        waiting = [await started(attacker, f"/wait/{n}") for n in range(2)]
        await until(lambda: len(shed.requests.waiting) == 2)
        refused_as_overloaded(await attacker.get("/third"))  # its two are waiting already
        agency_waits = await started(agency, "/agency-waits")
        await until(lambda: len(shed.requests.waiting) == 3)
        gate.release.set()
        answers = await asyncio.gather(holder, *waiting, agency_waits)
    assert [a.status_code for a in answers] == [200] * 4
    settled(shed)


async def test_peers_without_an_address_share_no_share() -> None:
    """Behind a unix socket no request has an address; lumping them into one "client" would
    cap the whole process at one client's share."""
    gate = Gate()
    shed = guarded(gate, capacity=3, queue=0, per_client=1)
    scope = {"type": "http", "path": "/no-address", "headers": [], "client": None}
    calls = [asyncio.create_task(shed(dict(scope), _no_body, _discard)) for _ in range(3)]
    await until(lambda: len(gate.started) == 3)
    assert shed.requests.by_client == {}
    gate.release.set()
    await asyncio.gather(*calls)
    settled(shed)


async def test_a_failing_request_gives_its_place_back() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    shed = ShedLoad(
        broken,
        requests=Lane(capacity=1, queue=0, max_wait_s=1, per_client=1),
        operations=Lane(capacity=1, queue=0, max_wait_s=1, per_client=1),
        operations_paths=frozenset(),
        free=frozenset(),
    )
    call: Callable[[], Awaitable[None]] = lambda: shed(  # noqa: E731
        {"type": "http", "path": "/x", "headers": [], "client": ("10.0.0.1", 1)},
        _no_body,
        _discard,
    )
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await call()
    settled(shed)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _discard(message: dict[str, Any]) -> None:
    """Answers go nowhere."""


def test_the_hub_sheds_with_the_limits_its_settings_give(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "max_concurrent_requests": 3,
            "max_queued_requests": 7,
            "max_queue_wait_s": 0.5,
            "max_requests_per_client": 2,
        }
    )
    app = create_app(configured)
    shedding = [m for m in app.user_middleware if m.cls is ShedLoad]
    assert len(shedding) == 1
    options = shedding[0].kwargs
    lane: Lane = options["requests"]
    assert (lane.capacity, lane.queue, lane.max_wait_s, lane.per_client) == (3, 7, 0.5, 2)
    assert options["free"] == {"/healthz"}
    assert options["operations_paths"] == {"/readyz", "/metrics"}
    # Outermost but for telemetry: a shed request costs no authentication.
    order = [m.cls.__name__ for m in app.user_middleware]
    assert order.index("ShedLoad") < order.index("Authenticate")
