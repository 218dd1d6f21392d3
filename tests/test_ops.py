"""Liveness, readiness (failing when Redis is down), and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exchange.agencies.models import Scope
from exchange.app import create_app
from exchange.hub import Hub
from exchange.settings import Environment, Settings
from tests.conftest import bearer, hub_admin_key, issue_key
from tests.servers import RedisServer, free_port, redis_executable, unavailable


def test_healthz_needs_no_credentials(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_component(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "worker": "ok"}


@pytest.mark.redis
def test_readyz_fails_while_redis_is_stopped(settings: Settings) -> None:
    executable = redis_executable()
    if executable is None:
        unavailable("redis-server not found")
        return
    server = RedisServer(executable)  # our own: this test stops it
    server.start()
    try:
        app = create_app(settings.model_copy(update={"broker_url": server.url}))
        with TestClient(app) as client:
            assert client.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}
            server.stop()
            down = client.get("/readyz")
            assert down.status_code == 503
            error = down.json()["error"]
            assert error["code"] == "not_ready"
            assert error["message"] == "The hub is not ready: broker unavailable."
            assert [d["in"] for d in error["details"]] == ["broker"]
            assert server.url not in down.text
            server.start()
            assert client.get("/readyz").status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_readyz_fails_when_the_database_is_unreachable(backend: str, tmp_path: Path) -> None:
    unreachable = {
        "sqlite": f"sqlite:///{tmp_path}",  # a directory: SQLite cannot open it
        "postgresql": f"postgresql://hub@127.0.0.1:{free_port()}/exchange",  # nobody listens
    }[backend]
    settings = Settings(database_url=unreachable, key_dir=tmp_path / "keys", log_json=False)
    app = create_app(settings)
    with TestClient(app) as client:
        down = client.get("/readyz")
    assert down.status_code == 503
    assert [d["in"] for d in down.json()["error"]["details"]] == ["database"]
    assert "127.0.0.1" not in down.text


def test_metrics_need_the_metrics_scope(client: TestClient, hub: Hub) -> None:
    assert client.get("/metrics").status_code == 401
    submitter = issue_key(hub, "polda-banten", [Scope.submit])
    assert client.get("/metrics", headers=bearer(submitter)).status_code == 403
    scraper = issue_key(hub, "prometheus", [Scope.metrics])
    assert client.get("/metrics", headers=bearer(scraper)).status_code == 200


def test_metrics_count_requests_by_route_template(client: TestClient, hub: Hub) -> None:
    scraper = issue_key(hub, "prometheus", [Scope.metrics])
    admin = hub_admin_key(hub)
    client.get("/v1/agencies/prometheus", headers=bearer(admin))
    client.get("/v1/agencies/nobody-at-all", headers=bearer(admin))
    client.get("/v1/not-a-route/12345", headers=bearer(admin))
    text = client.get("/metrics", headers=bearer(scraper)).text
    series = 'exchange_http_requests_total{method="GET",route="/v1/agencies/{agency_id}"'
    assert f'{series},status="200"}} 1.0' in text
    assert f'{series},status="404"}} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "12345" not in text
    assert "nobody-at-all" not in text
    assert 'exchange_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text


def test_the_api_description_is_served_in_dev_mode_only(settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(settings)) as dev:
        assert dev.get("/openapi.json").status_code == 200
    production = settings.model_copy(
        update={
            "env": Environment.production,
            "database_url": settings.database_url.replace("postgres@", "postgres:Zq8-strong@")
            if settings.database_url.startswith("postgresql")
            else settings.database_url,
        }
    )
    from exchange.keyring import Keyring

    Keyring.load(production.key_dir, origin=production.log_origin, create_missing=True)
    production_app = create_app(production)
    with TestClient(production_app) as prod:
        token = hub_admin_key(production_app.state.hub)
        for path in ("/openapi.json", "/docs"):
            assert prod.get(path).status_code == 401  # not public in production
            response = prod.get(path, headers=bearer(token))
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
