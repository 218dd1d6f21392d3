"""The hub's own keys, their ids (checked against published vectors) and the settings that
must refuse to run in production."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from exchange.audit.notes import KeyType, key_id, verifier_key
from exchange.crypto import b64url_decode, jwk_thumbprint
from exchange.errors import ConfigurationError
from exchange.hub import Hub
from exchange.keyring import KEY_FILES, LINKING_KEY_FILE, Keyring
from exchange.protection.sealing import SEALING_DIR, UnsealFailed
from exchange.settings import Environment, Settings


def test_jwk_thumbprint_matches_rfc8037_example() -> None:
    # RFC 8037, appendix A.3.
    raw = b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    assert jwk_thumbprint(raw) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_note_key_id_matches_c2sp_example() -> None:
    # The verifier key in the signed-note documentation (golang.org/x/mod/sumdb/note).
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    raw = base64.b64decode(vkey.rsplit("+", 1)[1])[1:]
    assert key_id("PeterNeumann", KeyType.ed25519, raw).hex() == "c74f20a3"
    assert verifier_key("PeterNeumann", KeyType.ed25519, raw) == vkey


def test_dev_keys_are_created_private_and_stable(tmp_path: Path) -> None:
    first = Keyring.load(tmp_path / "keys", origin="hub.test/log", create_missing=True)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for name in KEY_FILES.values():
        assert stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode) == 0o600
    again = Keyring.load(tmp_path / "keys", origin="hub.test/log", create_missing=False)
    assert again.public_document() == first.public_document()
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == sorted(
        [*KEY_FILES.values(), SEALING_DIR, LINKING_KEY_FILE]
    )
    assert stat.S_IMODE((tmp_path / "keys" / LINKING_KEY_FILE).stat().st_mode) == 0o600
    assert again.linking_key == first.linking_key
    (sealing_key,) = (tmp_path / "keys" / SEALING_DIR).iterdir()
    assert stat.S_IMODE(sealing_key.stat().st_mode) == 0o600
    sealed = first.sealer.seal(b"whsec_example", purpose="test")
    assert b"whsec_example" not in sealed
    assert again.sealer.unseal(sealed, purpose="test") == b"whsec_example"


def test_sealed_values_are_bound_to_their_purpose_and_key(tmp_path: Path) -> None:
    keyring = Keyring.load(tmp_path / "keys", origin="hub.test/log", create_missing=True)
    sealed = keyring.sealer.seal(b"secret", purpose="subscription-config:a")
    with pytest.raises(UnsealFailed):
        keyring.sealer.unseal(sealed, purpose="subscription-config:b")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(UnsealFailed):
        keyring.sealer.unseal(tampered, purpose="subscription-config:a")
    other = Keyring.load(tmp_path / "other", origin="hub.test/log", create_missing=True)
    with pytest.raises(UnsealFailed):
        other.sealer.unseal(sealed, purpose="subscription-config:a")


def test_missing_keys_refused_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="exchange init"):
        Keyring.load(tmp_path / "keys", origin="hub.test/log", create_missing=False)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    Keyring.load(tmp_path / "keys", origin="hub.test/log", create_missing=True)
    (tmp_path / "keys" / KEY_FILES["checkpoint"]).chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        Keyring.load(tmp_path / "keys", origin="hub.test/log", create_missing=True)


def test_published_keys_verify_the_hubs_signatures(client: TestClient, hub: Hub) -> None:
    response = client.get("/.well-known/exchange/keys")  # public, like any JWK set
    assert response.status_code == 200
    document = response.json()
    by_use = {key["use"]: key for key in document["keys"]}
    assert set(by_use) == {"checkpoint", "envelope"}
    for use, private in (
        ("checkpoint", hub.keyring.checkpoint_key),
        ("envelope", hub.keyring.envelope_key),
    ):
        published = by_use[use]
        raw = b64url_decode(published["x"])
        assert published["kid"] == jwk_thumbprint(raw)
        Ed25519PublicKey.from_public_bytes(raw).verify(private.sign(b"probe"), b"probe")
    checkpoint = by_use["checkpoint"]
    raw = b64url_decode(checkpoint["x"])
    assert checkpoint["note_key_id"] == key_id(document["origin"], KeyType.ed25519, raw).hex()


def test_production_refuses_development_defaults() -> None:
    problems = Settings(env=Environment.production).production_problems()
    assert any("EXCHANGE_DATABASE_URL" in p for p in problems)
    assert any("EXCHANGE_KEY_DIR" in p for p in problems)


@pytest.mark.parametrize("password", ["", "postgres", "exchange", "changeme"])
def test_production_refuses_weak_database_passwords(password: str, tmp_path: Path) -> None:
    auth = f"hub:{password}@" if password else "hub@"
    settings = Settings(
        env=Environment.production,
        database_url=f"postgresql://{auth}db.internal/exchange",
        key_dir=tmp_path,
    )
    problems = settings.production_problems()
    assert problems == [
        "EXCHANGE_DATABASE_URL has no password or a well-known one; set a strong password"
    ]
    assert all(password not in p for p in problems if password)


def test_production_accepts_explicit_settings(tmp_path: Path) -> None:
    settings = Settings(
        env=Environment.production,
        database_url="postgresql://hub:Zq8v-long-random@db.internal/exchange",
        key_dir=tmp_path,
    )
    assert settings.production_problems() == []


def test_hub_refuses_to_start_in_production_without_keys(tmp_path: Path) -> None:
    settings = Settings(
        env=Environment.production,
        database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        key_dir=tmp_path / "keys",
    )
    with pytest.raises(ConfigurationError) as raised:
        Hub.start(settings)
    message = raised.value.message.render("en")
    assert "exchange init" in message
    assert not (tmp_path / "keys").exists()


def test_unknown_database_or_broker_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="EXCHANGE_DATABASE_URL"):
        Settings(database_url="mysql://x/y")
    with pytest.raises(ValueError, match="EXCHANGE_BROKER_URL"):
        Settings(broker_url="amqp://x")
