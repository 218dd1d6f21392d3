"""Who manages an agency's keys: its admin keys (the hub admin for every agency); a key never
mints a longer-lived or stronger successor; signing keys registered by an admin, with an
optional second admin's approval before they count."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlmodel import select

from exchange.agencies.models import AgencyKind, ApiKey, Scope
from exchange.audit.models import AuditEvent
from exchange.crypto import b64url, jwk_thumbprint, raw_public_bytes
from exchange.hub import Hub
from exchange.models import utcnow
from exchange.registry.service import default_schemas_dir
from tests.conftest import bearer, hub_admin_key, issue_key

WARNING_PATH = (
    default_schemas_dir() / "village-early-warning/examples/valid/calo-group-departure.json"
)


def new_key(client: TestClient, token: str, agency: str, **body: Any) -> Any:
    return client.post(f"/v1/agencies/{agency}/keys", json=body, headers=bearer(token))


def expiring_key(hub: Hub, agency: str, scopes: list[Scope], seconds: float) -> str:
    token = issue_key(hub, agency, scopes)
    with hub.session() as session:
        key = session.get(ApiKey, token.split("_")[1])
        assert key is not None
        key.expires_at = utcnow() + timedelta(seconds=seconds)
        session.add(key)
    return token


def test_a_key_with_seconds_left_cannot_mint_a_longer_lived_one(
    client: TestClient, hub: Hub
) -> None:
    dying = expiring_key(hub, "polda-banten", [Scope.admin, Scope.receive], seconds=20)
    for body in (
        {"scopes": ["receive"]},  # no expiry at all
        {"scopes": ["receive"], "expires_at": (utcnow() + timedelta(days=1)).isoformat()},
    ):
        refused = new_key(client, dying, "polda-banten", **body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"][0]["pointer"] == "/expires_at"
    within = (utcnow() + timedelta(seconds=10)).isoformat()
    assert (
        new_key(client, dying, "polda-banten", scopes=["receive"], expires_at=within).status_code
        == 201
    )


def test_only_admin_keys_manage_keys(client: TestClient, hub: Hub) -> None:
    operator_admin = hub_admin_key(hub)
    metrics_only = hub_admin_key(hub, [Scope.metrics])
    admin_id = operator_admin.split("_")[1]
    refused = client.delete(f"/v1/agencies/hub/keys/{admin_id}", headers=bearer(metrics_only))
    assert refused.status_code == 403
    assert new_key(client, metrics_only, "hub", scopes=["metrics"]).status_code == 403
    submit_only = issue_key(hub, "kanim-tangerang", [Scope.submit], kind=AgencyKind.immigration)
    assert new_key(client, submit_only, "kanim-tangerang", scopes=["submit"]).status_code == 403
    assert client.get("/v1/me", headers=bearer(operator_admin)).status_code == 200


def test_only_the_hub_admin_makes_admin_keys(client: TestClient, hub: Hub) -> None:
    """One stolen admin key cannot mint the "second admin" that approves its own signing
    key, nor an admin successor that survives its revocation."""
    agency_admin = issue_key(hub, "polda-banten", [Scope.admin, Scope.receive])
    minted = new_key(client, agency_admin, "polda-banten", scopes=["admin"])
    assert minted.status_code == 403
    assert "hub admin" in minted.json()["error"]["message"]
    given = new_key(client, hub_admin_key(hub), "polda-banten", scopes=["admin"])
    assert given.status_code == 201


def test_an_agency_admin_administers_its_own_agency_only(client: TestClient, hub: Hub) -> None:
    polda_admin = issue_key(hub, "polda-banten", [Scope.admin, Scope.receive])
    issue_key(hub, "dinsos-banten", [Scope.receive])
    # Within its agency: at most the scopes it holds.
    assert new_key(client, polda_admin, "polda-banten", scopes=["receive"]).status_code == 201
    stronger = new_key(client, polda_admin, "polda-banten", scopes=["submit"])
    assert stronger.status_code == 403
    assert stronger.json()["error"]["code"] == "forbidden"
    # Nothing of another agency, nor of the hub.
    assert new_key(client, polda_admin, "dinsos-banten", scopes=["receive"]).status_code == 403
    for method, path in [("GET", "/v1/agencies"), ("PATCH", "/v1/agencies/dinsos-banten")]:
        response = client.request(method, path, json={}, headers=bearer(polda_admin))
        assert response.status_code == 403, (method, path)


def test_the_hub_admin_provisions_any_scope_for_another_agency(
    client: TestClient, hub: Hub
) -> None:
    issue_key(hub, "polda-banten", [Scope.receive])
    made = new_key(client, hub_admin_key(hub), "polda-banten", scopes=["submit", "receive"])
    assert made.status_code == 201, made.text


def _signed_submission(client: TestClient, token: str, key: Ed25519PrivateKey) -> int:
    payload = json.loads(WARNING_PATH.read_text())
    key_id = jwk_thumbprint(raw_public_bytes(key.public_key()))
    signature = f'keyid="{key_id}", sig="{b64url(key.sign(rfc8785.dumps(payload)))}"'
    response = client.post(
        "/v1/reports",
        json={"type": "village-early-warning", "allow_no_recipient": True, "payload": payload},
        headers={**bearer(token), "Exchange-Signature": signature},
    )
    return response.status_code


def test_a_stolen_submit_key_cannot_register_a_signing_key(client: TestClient, hub: Hub) -> None:
    stolen = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    admin = hub_admin_key(hub)
    patched = client.patch(
        "/v1/agencies/pimpasa-tanjakan-mekar",
        json={"require_signed_reports": True},
        headers=bearer(admin),
    )
    assert patched.status_code == 200
    thief_key = Ed25519PrivateKey.generate()
    registered = client.post(
        "/v1/agencies/pimpasa-tanjakan-mekar/signing-keys",
        json={"public_key": b64url(raw_public_bytes(thief_key.public_key()))},
        headers=bearer(stolen),
    )
    assert registered.status_code == 403
    assert _signed_submission(client, stolen, thief_key) == 401


def test_a_signing_key_awaiting_approval_verifies_nothing(client: TestClient, hub: Hub) -> None:
    submitter = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.submit], kind=AgencyKind.village)
    first_admin = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.admin])
    second_admin = issue_key(hub, "pimpasa-tanjakan-mekar", [Scope.admin])
    client.patch(
        "/v1/agencies/pimpasa-tanjakan-mekar",
        json={"require_signing_key_approval": True},
        headers=bearer(hub_admin_key(hub)),
    )
    key = Ed25519PrivateKey.generate()
    added = client.post(
        "/v1/agencies/pimpasa-tanjakan-mekar/signing-keys",
        json={"public_key": b64url(raw_public_bytes(key.public_key()))},
        headers=bearer(first_admin),
    ).json()
    assert added["approved_at"] is None
    assert _signed_submission(client, submitter, key) == 401

    approve = f"/v1/agencies/pimpasa-tanjakan-mekar/signing-keys/{added['id']}/approve"
    assert client.post(approve, headers=bearer(first_admin)).status_code == 403
    assert client.post(approve, headers=bearer(submitter)).status_code == 403
    approved = client.post(approve, headers=bearer(second_admin))
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"].endswith(second_admin.split("_")[1])
    assert client.post(approve, headers=bearer(second_admin)).status_code == 409
    assert _signed_submission(client, submitter, key) == 202
    with hub.session() as session:
        actions = session.exec(
            select(AuditEvent.action).where(AuditEvent.subject == "agency:pimpasa-tanjakan-mekar")
        ).all()
    assert "signing_key.approved" in actions


def test_revoking_a_key_ends_the_keys_it_made(client: TestClient, hub: Hub) -> None:
    """A stolen key's offspring end with it; keys the hub admin provided for the agency do
    not, nor do other agencies' keys."""
    hub_admin = hub_admin_key(hub)
    issue_key(hub, "polda-banten", [Scope.receive])
    desk = new_key(client, hub_admin, "polda-banten", scopes=["admin", "receive"])
    issue_key(hub, "dinsos-banten", [Scope.receive])  # another agency, untouched
    desk_token, desk_id = desk.json()["token"], desk.json()["id"]
    child = new_key(client, desk_token, "polda-banten", scopes=["receive", "admin"])
    assert child.status_code == 403  # admin only from the hub admin
    child = new_key(client, desk_token, "polda-banten", scopes=["receive"]).json()
    sibling = new_key(client, hub_admin, "polda-banten", scopes=["receive"]).json()
    revoked = client.delete(f"/v1/agencies/polda-banten/keys/{desk_id}", headers=bearer(hub_admin))
    assert revoked.status_code == 200
    assert client.get("/v1/me", headers=bearer(child["token"])).status_code == 401
    assert client.get("/v1/me", headers=bearer(sibling["token"])).status_code == 200
    assert client.get("/v1/me", headers=bearer(hub_admin)).status_code == 200
