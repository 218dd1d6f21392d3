"""FastAPI dependencies every router uses: the request's session, the caller, scope checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from exchange.agencies.models import Scope
from exchange.agencies.service import Principal
from exchange.errors import AuthenticationFailed
from exchange.hub import Hub
from exchange.i18n import t


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def get_hub(request: Request) -> Hub:
    """The hub, as a dependency. Async because it does no I/O: a sync dependency costs
    every request a hop to the threadpool and back (measured: about a tenth of the event
    loop's time on a single submission)."""
    return hub_of(request)


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work. It commits after the endpoint returns and before the
    response is sent (``scope="function"`` below), so a 2xx means the change is durable."""
    with hub_of(request).session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
HubDep = Annotated[Hub, Depends(get_hub)]


async def current_principal(request: Request) -> Principal:
    """The caller, authenticated by the :class:`~exchange.middleware.Authenticate`
    middleware before the body was read (every route but the public ones)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise AuthenticationFailed(t("auth.missing"))
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def requires(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only callers whose key holds ``scope``. Async because it
    does no I/O: FastAPI then runs it on the event loop instead of a threadpool hop."""

    async def check(principal: PrincipalDep) -> Principal:
        principal.require(scope)
        return principal

    return check


async def hub_admin(principal: PrincipalDep) -> Principal:
    """Admits only an admin key of the operator agency: it administers the whole hub."""
    principal.require_hub_admin()
    return principal


AdminDep = Annotated[Principal, Depends(hub_admin)]
