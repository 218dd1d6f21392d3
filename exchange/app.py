"""The FastAPI application: ``create_app(settings)`` builds one, and ``app_from_environment``
is the factory uvicorn calls in each worker process."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from exchange.agencies.router import router as agencies_router
from exchange.audit.failures import SUMMARY_WINDOW_S, AuthFailureTally, WindowedTally
from exchange.audit.router import router as audit_router
from exchange.audit.service import SYSTEM_ACTOR
from exchange.console import site as console
from exchange.delivery.router import router as deliveries_router
from exchange.errors import ERROR_RESPONSES, install_error_handlers
from exchange.hub import Hub
from exchange.intake.router import router as intake_router
from exchange.logs import configure_logging
from exchange.metrics import HttpMetrics
from exchange.middleware import (
    OPERATIONS_CAPACITY,
    OPERATIONS_PER_CLIENT,
    OPERATIONS_QUEUE,
    Authenticate,
    BodySizeLimit,
    Lane,
    RequestTelemetry,
    ShedLoad,
)
from exchange.ops.router import router as ops_router
from exchange.registry.publication import record_publications
from exchange.registry.router import router as registry_router
from exchange.reports.router import router as reports_router
from exchange.routing.router import router as subscriptions_router
from exchange.settings import Environment, Settings
from exchange.statistics.router import router as statistics_router
from workers.broker import periodic_actors, start_worker

logger = logging.getLogger(__name__)

SUMMARY_CHECK_S = 5.0


def create_app(
    settings: Settings, *, hub: Hub | None = None, freeze_after_start: bool = False
) -> FastAPI:
    """An app for these settings. Its engine and broker are built here, at start-up.
    ``freeze_after_start``: for a serving process, set what start-up built aside from the
    cyclic garbage collector (not for tests, which start many apps in one process)."""
    hub = hub or Hub.start(settings)

    def summarise_failures(force: bool = False) -> None:
        tallies: list[WindowedTally] = [app.state.auth_failures, hub.rejections]
        due = [tally for tally in tallies if force or tally.due()]
        if due:
            with hub.session() as session:
                for tally in due:
                    tally.record_summary(session)

    async def summarise_periodically() -> None:
        while True:
            await asyncio.sleep(SUMMARY_CHECK_S)
            try:
                await run_in_threadpool(summarise_failures)
            except Exception:
                logger.exception("could not record the failure summaries")

    def announce_schemas() -> None:
        try:
            with hub.session() as session:
                record_publications(session, registry=hub.registry, actor=SYSTEM_ACTOR)
        except Exception:  # the database is down: /readyz says so; the next start records them
            logger.warning("could not record the published schema versions", exc_info=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(announce_schemas)
        # memory:// has no separate worker processes: jobs run on threads of this one.
        app.state.worker = (
            start_worker(
                hub.broker, threads=settings.worker_threads, periodic=periodic_actors(settings)
            )
            if settings.embedded_broker
            else None
        )
        summariser = asyncio.create_task(summarise_periodically())
        if freeze_after_start:
            # What start-up built (modules, schemas, routes, mappers, the worker) lives as
            # long as the process; the collector's full collections would otherwise walk it
            # all, about 0.1 s with every thread stopped, several times a minute under load.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            summariser.cancel()
            await run_in_threadpool(summarise_failures, True)
            if app.state.worker is not None:
                app.state.worker.stop()
                app.state.worker = None
            hub.close()

    # The interactive description is for developers: served in dev mode only, so that in
    # production nothing but the health checks and the public keys answers without a key.
    development = settings.env is Environment.dev
    app = FastAPI(
        title="Exchange hub",
        version="1",
        summary="Secure exchange of early-warning reports between agencies.",
        lifespan=lifespan,
        docs_url="/docs" if development else None,
        redoc_url=None,
        openapi_url="/openapi.json" if development else None,
        responses=ERROR_RESPONSES,
    )
    app.state.hub = hub
    app.state.worker = None
    app.state.metrics = HttpMetrics()
    app.state.auth_failures = AuthFailureTally(window_s=SUMMARY_WINDOW_S)
    install_error_handlers(app)
    app.include_router(ops_router)
    app.include_router(agencies_router)
    app.include_router(audit_router)
    app.include_router(registry_router)
    app.include_router(reports_router)
    app.include_router(subscriptions_router)
    app.include_router(deliveries_router)
    app.include_router(intake_router)
    app.include_router(statistics_router)
    console.install(app)
    # Added last = outermost: telemetry sees every answer; requests are authenticated before
    # the body limit (which depends on the key) or anything else reads their body.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        max_bulk_bytes=settings.max_bulk_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    public = {"/healthz", "/readyz", "/.well-known/exchange/keys"}
    if development:
        public |= {"/docs", "/docs/oauth2-redirect", "/openapi.json"}
    app.add_middleware(Authenticate, public_paths=frozenset(public))
    app.add_middleware(
        ShedLoad,
        requests=Lane(
            capacity=settings.max_concurrent_requests,
            queue=settings.max_queued_requests,
            max_wait_s=settings.max_queue_wait_s,
            per_client=settings.max_requests_per_client,
        ),
        operations=Lane(
            capacity=OPERATIONS_CAPACITY,
            queue=OPERATIONS_QUEUE,
            max_wait_s=settings.max_queue_wait_s,
            per_client=OPERATIONS_PER_CLIENT,
        ),
        operations_paths=frozenset({"/readyz", "/metrics"}),
        free=frozenset({"/healthz"}),
    )
    app.add_middleware(RequestTelemetry, metrics=app.state.metrics)
    return app


def app_from_environment() -> FastAPI:
    settings = Settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return create_app(settings, freeze_after_start=True)
