"""Agencies and the lifecycle of their credentials, over HTTP, on both databases."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import ApiKey, Scope
from exchange.hub import Hub
from exchange.models import utcnow
from tests.conftest import bearer, issue_key

POLDA = {"id": "polda-banten", "name": "Polda Banten", "kind": "police", "jurisdiction": "36"}


def create_agency(client: TestClient, admin_token: str, body: dict[str, str]) -> None:
    response = client.post("/v1/agencies", json=body, headers=bearer(admin_token))
    assert response.status_code == 201, response.text


def test_admin_registers_and_lists_agencies(client: TestClient, admin_token: str) -> None:
    create_agency(client, admin_token, POLDA)
    listed = client.get("/v1/agencies", headers=bearer(admin_token)).json()
    assert [a["id"] for a in listed] == ["hub", "polda-banten"]
    assert listed[1] | {"created_at": None} == {
        **POLDA,
        "active": True,
        "require_signed_reports": False,
        "require_signing_key_approval": False,
        "clearance": ["operational", "public"],  # the least, until an admin widens it
        "created_at": None,
    }


def test_duplicate_agency_is_a_conflict(client: TestClient, admin_token: str) -> None:
    create_agency(client, admin_token, POLDA)
    again = client.post("/v1/agencies", json=POLDA, headers=bearer(admin_token))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "agency_exists"


def test_key_lifecycle_create_use_rotate_revoke(client: TestClient, admin_token: str) -> None:
    create_agency(client, admin_token, POLDA)

    def issue(scopes: list[str], label: str, by: str) -> dict[str, str]:
        response = client.post(
            "/v1/agencies/polda-banten/keys",
            json={"scopes": scopes, "label": label},
            headers=bearer(by),
        )
        assert response.status_code == 201, response.text
        issued: dict[str, str] = response.json()
        return issued

    first = issue(["receive"], "first", admin_token)
    assert first["token"].startswith("exk_")
    me = client.get("/v1/me", headers=bearer(first["token"])).json()
    assert me["agency"]["id"] == "polda-banten"
    assert me["scopes"] == ["receive"]

    # Rotation: the agency's admin key (given by the hub admin) makes the successor; both
    # work until the old one is revoked.
    agency_admin = issue(["admin", "receive"], "desk admin", admin_token)["token"]
    second = issue(["receive"], "second", agency_admin)
    for token in (first["token"], second["token"]):
        assert client.get("/v1/me", headers=bearer(token)).status_code == 200

    revoked = client.delete(
        f"/v1/agencies/polda-banten/keys/{first['id']}", headers=bearer(agency_admin)
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/v1/me", headers=bearer(first["token"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "The API key has been revoked."
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/v1/me", headers=bearer(second["token"])).status_code == 200

    again = client.delete(
        f"/v1/agencies/polda-banten/keys/{first['id']}", headers=bearer(admin_token)
    )
    assert again.status_code == 409


def test_key_listing_never_shows_secrets(client: TestClient, admin_token: str, hub: Hub) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    listed = client.get("/v1/agencies/polda-banten/keys", headers=bearer(admin_token))
    assert listed.status_code == 200
    text = listed.text
    secret = token.split("_", 2)[2]
    assert secret not in text
    assert "token" not in listed.json()[0]
    assert "secret_hash" not in listed.json()[0]
    with hub.session() as session:
        stored = session.exec(select(ApiKey).where(ApiKey.agency_id == "polda-banten")).one()
    assert secret not in stored.secret_hash
    assert stored.secret_hash not in text


def test_expired_key_is_refused(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    key_id = token.split("_")[1]
    with hub.session() as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        key.expires_at = utcnow() - timedelta(seconds=1)
        session.add(key)
    response = client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The API key has expired."


def test_expiry_in_the_past_is_rejected_with_a_pointer(
    client: TestClient, admin_token: str
) -> None:
    create_agency(client, admin_token, POLDA)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = client.post(
        "/v1/agencies/polda-banten/keys",
        json={"scopes": ["receive"], "expires_at": past},
        headers=bearer(admin_token),
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["pointer"] == "/expires_at"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer exk_0000000000000000_wrongsecret",
        "Bearer not-a-token",
    ],
)
def test_missing_or_wrong_credentials_are_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_right_key_id_with_wrong_secret_is_401(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get("/v1/me", headers=bearer(forged)).status_code == 401


def test_key_without_the_scope_is_403(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive, Scope.submit])
    response = client.get("/v1/agencies", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "scope_missing",
        "message": "Only an admin key of the hub's operator may do this.",
        "details": [],
    }


def test_agency_cannot_see_or_manage_another(client: TestClient, hub: Hub) -> None:
    polda = issue_key(hub, "polda-banten", [Scope.receive, Scope.submit])
    issue_key(hub, "dinsos-banten", [Scope.receive])
    for method, path in [
        ("GET", "/v1/agencies/dinsos-banten"),
        ("GET", "/v1/agencies/dinsos-banten/keys"),
        ("POST", "/v1/agencies/dinsos-banten/keys"),
        ("GET", "/v1/agencies/dinsos-banten/signing-keys"),
    ]:
        body = {"scopes": ["receive"]} if method == "POST" else None
        response = client.request(method, path, json=body, headers=bearer(polda))
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"


def test_agency_cannot_grant_itself_a_scope_it_lacks(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    response = client.post(
        "/v1/agencies/polda-banten/keys", json={"scopes": ["admin"]}, headers=bearer(token)
    )
    assert response.status_code == 403
    assert "'admin'" in response.json()["error"]["message"]


def test_deactivated_agency_keys_stop_working(
    client: TestClient, admin_token: str, hub: Hub
) -> None:
    token = issue_key(hub, "polda-banten", [Scope.receive])
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    patched = client.patch(
        "/v1/agencies/polda-banten", json={"active": False}, headers=bearer(admin_token)
    )
    assert patched.status_code == 200
    refused = client.get("/v1/me", headers=bearer(token))
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "Agency polda-banten is deactivated."


def test_unknown_scope_is_rejected_with_pointer(client: TestClient, admin_token: str) -> None:
    create_agency(client, admin_token, POLDA)
    response = client.post(
        "/v1/agencies/polda-banten/keys",
        json={"scopes": ["receive", "everything"]},
        headers=bearer(admin_token),
    )
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["pointer"] == "/scopes/1"
    assert "everything" in detail["message"]


def _public_key_b64url() -> tuple[str, bytes]:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), raw


def test_signing_keys_add_list_revoke(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "kanim-tangerang", [Scope.admin])
    encoded, _raw = _public_key_b64url()
    added = client.post(
        "/v1/agencies/kanim-tangerang/signing-keys",
        json={"public_key": encoded, "label": "submission signer"},
        headers=bearer(token),
    )
    assert added.status_code == 201, added.text
    key_id = added.json()["id"]
    assert added.json()["public_key"] == encoded

    duplicate = client.post(
        "/v1/agencies/kanim-tangerang/signing-keys",
        json={"public_key": encoded},
        headers=bearer(token),
    )
    assert duplicate.status_code == 409

    listed = client.get("/v1/agencies/kanim-tangerang/signing-keys", headers=bearer(token))
    assert [k["id"] for k in listed.json()] == [key_id]
    revoked = client.delete(
        f"/v1/agencies/kanim-tangerang/signing-keys/{key_id}", headers=bearer(token)
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None


def test_signing_key_accepts_pem(client: TestClient, hub: Hub) -> None:
    token = issue_key(hub, "kanim-tangerang", [Scope.admin])
    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    added = client.post(
        "/v1/agencies/kanim-tangerang/signing-keys",
        json={"public_key": pem},
        headers=bearer(token),
    )
    assert added.status_code == 201, added.text


@pytest.mark.parametrize(
    ("public_key", "reason"),
    [
        ("AAAA", "3 bytes where 32 are expected"),
        ("!!!not base64!!!", "not base64"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "the PEM does not parse"),
    ],
)
def test_bad_signing_key_is_422_with_pointer(
    client: TestClient, hub: Hub, public_key: str, reason: str
) -> None:
    token = issue_key(hub, "kanim-tangerang", [Scope.admin])
    response = client.post(
        "/v1/agencies/kanim-tangerang/signing-keys",
        json={"public_key": public_key},
        headers=bearer(token),
    )
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["pointer"] == "/public_key"
    assert reason in detail["message"]


def test_unknown_agency_is_404(client: TestClient, admin_token: str) -> None:
    response = client.get("/v1/agencies/nobody-here", headers=bearer(admin_token))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "agency_not_found"


def test_every_key_change_is_audited(client: TestClient, admin_token: str, hub: Hub) -> None:
    import json

    from exchange.audit.models import AuditEvent

    create_agency(client, admin_token, POLDA)
    issued = client.post(
        "/v1/agencies/polda-banten/keys", json={"scopes": ["receive"]}, headers=bearer(admin_token)
    ).json()
    client.delete(f"/v1/agencies/polda-banten/keys/{issued['id']}", headers=bearer(admin_token))
    encoded, _ = _public_key_b64url()
    signing = client.post(
        "/v1/agencies/polda-banten/signing-keys",
        json={"public_key": encoded},
        headers=bearer(admin_token),
    ).json()
    client.delete(
        f"/v1/agencies/polda-banten/signing-keys/{signing['id']}", headers=bearer(admin_token)
    )
    with hub.session() as session:
        events = session.exec(
            select(AuditEvent).where(AuditEvent.subject == "agency:polda-banten")
        ).all()
    logged = [json.loads(e.canonical) for e in sorted(events, key=lambda e: e.seq or 0)]
    assert [e["action"] for e in logged] == [
        "agency.created",
        "api_key.created",
        "api_key.revoked",
        "signing_key.added",
        "signing_key.revoked",
    ]
    assert logged[2]["details"] == {"key_id": issued["id"]}
    assert logged[4]["details"] == {"key_id": signing["id"]}
    assert all(e["actor"].startswith("agency:hub/key:") for e in logged)
