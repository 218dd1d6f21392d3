"""Every failure answers in one JSON shape, in English or Indonesian, never as a bare 500."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from exchange.app import create_app
from exchange.hub import Hub
from exchange.i18n import CATALOGUE, negotiate
from exchange.settings import Settings
from tests.conftest import bearer, hub_admin_key


def assert_error_shape(body: object, code: str) -> dict[str, object]:
    assert isinstance(body, dict)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], list)
    return error


def test_unknown_route_is_json_404(client: TestClient, admin_token: str) -> None:
    response = client.get("/v1/no-such-thing", headers=bearer(admin_token))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert_error_shape(response.json(), "not_found")


def test_anonymous_requests_are_refused_before_their_body_is_read(client: TestClient) -> None:
    for method, path in [("POST", "/v1/agencies"), ("POST", "/v1/reports"), ("GET", "/v1/x")]:
        response = client.request(
            method, path, content=b'{"broken', headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, (method, path)
        assert_error_shape(response.json(), "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/healthz").status_code == 200
    assert client.get("/.well-known/exchange/keys").status_code == 200


def test_wrong_method_is_json_405(client: TestClient) -> None:
    response = client.put("/healthz")
    assert response.status_code == 405
    assert_error_shape(response.json(), "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_malformed_json_is_400_with_position(client: TestClient, admin_token: str) -> None:
    response = client.post(
        "/v1/agencies",
        content=b'{"id": "polda-banten", ',
        headers={**bearer(admin_token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = assert_error_shape(response.json(), "malformed_request")
    assert "not valid JSON" in str(error["message"])


def test_schema_violations_carry_every_pointer(client: TestClient, admin_token: str) -> None:
    response = client.post(
        "/v1/agencies",
        json={"id": "X", "kind": "army", "jurisdiction": "36.0"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 422
    error = assert_error_shape(response.json(), "invalid")
    details = error["details"]
    assert isinstance(details, list)
    pointers = {d["pointer"]: d["type"] for d in details}
    assert pointers == {
        "/id": "slug_format",
        "/name": "missing",
        "/kind": "enum",
        "/jurisdiction": "jurisdiction_format",
    }
    assert all(d["in"] == "body" for d in details)


def test_messages_follow_accept_language(client: TestClient, admin_token: str) -> None:
    body = {"id": "polda-banten", "kind": "police", "jurisdiction": "36"}
    english = client.post("/v1/agencies", json=body, headers=bearer(admin_token))
    indonesian = client.post(
        "/v1/agencies",
        json=body,
        headers={**bearer(admin_token), "Accept-Language": "id-ID,id;q=0.9,en;q=0.5"},
    )
    assert english.headers["content-language"] == "en"
    assert indonesian.headers["content-language"] == "id"
    assert english.json()["error"]["details"][0]["message"] == "This field is required."
    assert indonesian.json()["error"]["details"][0]["message"] == "Kolom ini wajib diisi."
    assert indonesian.json()["error"]["message"] == "Permintaan tidak sah; lihat rincian."


def test_unauthenticated_message_in_indonesian(client: TestClient) -> None:
    response = client.get("/v1/me", headers={"Accept-Language": "id"})
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("Perlu autentikasi")


@pytest.fixture
def small_limit_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"max_request_bytes": 64}))
    with TestClient(app) as test_client:
        yield test_client


def test_oversize_body_with_content_length_is_413(small_limit_client: TestClient) -> None:
    hub: Hub = small_limit_client.app.state.hub  # type: ignore[attr-defined]
    response = small_limit_client.post(
        "/v1/agencies",
        content=b"{" + b" " * 100 + b"}",
        headers={**bearer(hub_admin_key(hub)), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    error = assert_error_shape(response.json(), "payload_too_large")
    assert "64 bytes" in str(error["message"])


def test_oversize_chunked_body_is_413(small_limit_client: TestClient) -> None:
    hub: Hub = small_limit_client.app.state.hub  # type: ignore[attr-defined]
    token = hub_admin_key(hub)

    def chunks() -> Iterator[bytes]:
        yield b'{"id": "polda-banten", "name": "'
        yield b"x" * 100
        yield b'"}'

    response = small_limit_client.post(
        "/v1/agencies",
        content=chunks(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert_error_shape(response.json(), "payload_too_large")


@pytest.fixture
def failing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    return app


def test_unexpected_error_is_json_500_without_internals(failing_app: FastAPI) -> None:
    with TestClient(failing_app, raise_server_exceptions=False) as test_client:
        token = hub_admin_key(failing_app.state.hub)
        response = test_client.get("/boom", headers=bearer(token))
    assert response.status_code == 500
    error = assert_error_shape(response.json(), "internal")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert re.search(r"incident [0-9a-f]{12}", str(error["message"]))


def test_catalogue_is_complete_in_both_languages() -> None:
    formatter = string.Formatter()
    for key, templates in CATALOGUE.items():
        assert set(templates) == {"en", "id"}, key
        fields = [{f for _, f, _, _ in formatter.parse(text) if f} for text in templates.values()]
        assert fields[0] == fields[1], f"{key}: placeholders differ between languages"


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("id", "id"),
        ("id-ID", "id"),
        ("in", "id"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, id;q=0.8, en;q=0.7", "id"),
        ("en;q=0.5, id;q=0.9", "id"),
        ("id;q=0, en", "en"),
        ("id;q=abc, en;q=0.1", "en"),
        ("fr, de", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, locale: str) -> None:
    assert negotiate(header) == locale


def database_gone(*_args: object, **_kwargs: object) -> None:
    raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))


@pytest.mark.parametrize("where", ["route", "middleware"])
def test_a_database_away_is_503_with_retry_after_never_500(
    client: TestClient, admin_token: str, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A restart of PostgreSQL (or SQLite locked past its timeout) mid-request: the client is
    told to come back, in a JSON error that names no server detail."""
    if where == "route":
        monkeypatch.setattr("exchange.agencies.router.service.get_agency", database_gone)
    else:
        monkeypatch.setattr("exchange.middleware.authenticate", database_gone)
    answer = client.get("/v1/agencies/hub", headers=bearer(admin_token))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert_error_shape(answer.json(), "not_ready")
    assert "server closed" not in answer.text
