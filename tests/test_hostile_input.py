"""No input makes the hub answer 500: bodies that are not I-JSON, moments outside what UTC
holds, integers past 64 bits, overlong host names — each gets a 4xx naming what and where,
on every endpoint that takes JSON, and a bad bulk line fails alone."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.agencies.models import AgencyKind, Scope
from exchange.hub import Hub
from tests.conftest import bearer, hub_admin_key, issue_key

# Every endpoint with a JSON body, with who calls it.
JSON_ENDPOINTS = [
    ("POST", "/v1/reports", "village"),
    ("POST", "/v1/agencies", "admin"),
    ("PATCH", "/v1/agencies/polda-banten", "admin"),
    ("POST", "/v1/agencies/polda-banten/keys", "admin"),
    ("POST", "/v1/agencies/polda-banten/signing-keys", "admin"),
    ("POST", "/v1/audit/cosignatures", "admin"),
    ("POST", "/v1/subscriptions", "polda"),
    ("POST", "/v1/inbox/ack", "polda"),
    ("POST", "/v1/deliveries:recover", "polda"),
    ("POST", "/v1/deliveries/0123456789abcdef0123456789abcdef/ack", "polda"),
]

NOT_IJSON = {
    "unpaired surrogate": b'{"label": "\\ud800"}',
    "integer past 2^53": b'{"label": 9007199254740993}',
    "number too large": b'{"label": 1e999}',
    "NaN": b'{"label": NaN}',
    "nesting too deep": b'{"label": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "not UTF-8": b'{"label": "\xff\xfe"}',
    "truncated": b'{"label": ',
    "U+0000 in a string": b'{"label": "a\\u0000b"}',
    "U+0000 in a key": b'{"a\\u0000": 1}',
}


@pytest.fixture
def callers(client: TestClient, hub: Hub) -> dict[str, dict[str, str]]:
    return {
        "admin": bearer(hub_admin_key(hub, [Scope.admin, Scope.audit])),
        "village": bearer(issue_key(hub, "pimpasa-x", [Scope.submit], kind=AgencyKind.village)),
        "polda": bearer(issue_key(hub, "polda-banten", [Scope.receive, Scope.admin])),
    }


def send(client: TestClient, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    return client.request(
        method, path, content=body, headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(("method", "path", "caller"), JSON_ENDPOINTS)
def test_bodies_that_are_not_ijson_are_malformed_requests(
    client: TestClient,
    callers: dict[str, dict[str, str]],
    method: str,
    path: str,
    caller: str,
) -> None:
    for case, body in NOT_IJSON.items():
        response = send(client, method, path, callers[caller], body)
        assert response.status_code == 400, (case, response.text)
        error = response.json()["error"]
        assert error["code"] == "malformed_request", case
        assert error["details"], case
    pointed = send(client, method, path, callers[caller], b'{"a": {"b": [1, 1e999]}}')
    assert pointed.json()["error"]["details"][0]["pointer"] == "/a/b/1"


# Any JSON value, with the atoms that trouble canonicalisers and databases.
awkward = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.datetimes().map(lambda d: d.isoformat()),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@pytest.mark.parametrize(("method", "path", "caller"), JSON_ENDPOINTS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "payload",
                "label",
                "scopes",
                "expires_at",
                "size",
                "signature",
                "since",
                "until",
                "ids",
                "connector",
                "config",
                "id",
                "name",
                "kind",
                "public_key",
                "regions",
                "active",
                "jurisdiction",
                "refs",
                "recipients",
                "tlp",
            ]
        ),
        awkward,
        max_size=5,
    )
)
def test_no_json_body_makes_a_server_error(
    client: TestClient,
    callers: dict[str, dict[str, str]],
    method: str,
    path: str,
    caller: str,
    document: dict[str, Any],
) -> None:
    body = json.dumps(document).encode()
    response = send(client, method, path, callers[caller], body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"),
    [
        ("GET", f"/v1/inbox?after={cursor('2026-01-01T00:00:00|x')}", None, "/after"),
        ("GET", f"/v1/inbox?after={cursor('9999-12-31T23:59:59-23:59|x')}", None, "/after"),
        (
            "GET",
            f"/v1/inbox?after={cursor('2026-01-01T00:00:00+00:00|a' + chr(0) + 'b')}",
            None,
            "/after",
        ),
        (
            "POST",
            "/v1/agencies/polda-banten/keys",
            {"scopes": ["receive"], "expires_at": "9999-12-31T23:59:59-23:59"},
            "/expires_at",
        ),
        (
            "POST",
            "/v1/deliveries:recover",
            {"since": "0001-01-01T00:00:00+14:00", "until": "2030-01-01T00:00:00Z"},
            "/since",
        ),
        (
            "POST",
            "/v1/subscriptions",
            {"connector": "webhook", "config": {"url": f"https://{'a' * 70}.example/x"}},
            "/config",
        ),
    ],
)
def test_moments_and_names_out_of_range_are_refused_with_their_pointer(
    client: TestClient,
    callers: dict[str, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    pointer: str,
) -> None:
    response = client.request(method, path, json=body, headers=callers["polda"])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["pointer"] == pointer


@pytest.mark.parametrize(
    "path",
    [
        "/v1/audit/events?start=18446744073709551616&end=18446744073709551617",
        "/v1/audit/proof/inclusion?index=18446744073709551616",
        "/v1/audit/proof/inclusion?size=18446744073709551616",
        "/v1/audit/proof/consistency?from=18446744073709551616",
    ],
)
def test_query_integers_past_64_bits_are_refused(
    client: TestClient, callers: dict[str, dict[str, str]], path: str
) -> None:
    response = client.get(path, headers=callers["admin"])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["in"] == "query"


def test_a_hostile_bulk_line_fails_alone(
    client: TestClient, callers: dict[str, dict[str, str]]
) -> None:
    from tests.reports.test_submit import WARNING

    good = orjson.dumps(
        {"type": "village-early-warning", "allow_no_recipient": True, "payload": WARNING}
    )
    lines = [
        good,
        b'{"type": "village-early-warning", "payload": {"narrative": "\\udc00"}}',
        b'{"type": "village-early-warning", "payload": {"count": 99999999999999999999}}',
        b'{"type": "village-early-warning", "idempotency_key": "k", "payload": {"n": 1e400}}',
        good,
    ]
    response = client.post(
        "/v1/reports:bulk",
        content=b"\n".join(lines) + b"\n",
        headers={**callers["village"], "Content-Type": "application/x-ndjson"},
    )
    results = [orjson.loads(line) for line in response.text.splitlines()]
    assert [r["status"] for r in results] == [202, 400, 400, 400, 202]
    assert results[2]["error"]["details"][0]["pointer"] == "/payload/count"


@pytest.mark.parametrize(
    ("path", "location"),
    [("/v1/agencies/polda%00banten", "path"), ("/v1/deliveries?report_id=a%00b", "query")],
)
def test_a_parameter_holding_nul_is_refused_before_any_lookup(
    client: TestClient, callers: dict[str, dict[str, str]], path: str, location: str
) -> None:
    response = client.get(path, headers=callers["admin"])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"][0]["in"] == location


def test_405_names_every_method_the_path_serves(
    client: TestClient, callers: dict[str, dict[str, str]]
) -> None:
    response = client.request("PUT", "/v1/agencies/polda-banten", headers=callers["admin"])
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PATCH"
    assert response.json()["error"]["code"] == "method_not_allowed"
