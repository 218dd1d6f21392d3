"""What deliveries need from the operator's settings and the hub's keys, built once per
process: the retry policy and the context every connector instance is given."""

from __future__ import annotations

from datetime import timedelta

from connectors.base import ConnectorContext
from exchange.crypto import jwk_thumbprint, raw_public_bytes
from exchange.delivery.service import DeliveryPolicy
from exchange.keyring import Keyring
from exchange.settings import Settings


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        schedule_s=tuple(settings.delivery_schedule_s),
        timeout_s=settings.delivery_timeout_s,
        backoff_floor_s=settings.delivery_backoff_floor_s,
        max_in_flight_per_subscription=settings.delivery_max_in_flight_per_subscription,
        max_in_flight_per_agency=settings.delivery_max_in_flight_per_agency,
    )


def connector_context(settings: Settings, keyring: Keyring) -> ConnectorContext:
    return ConnectorContext(
        signing_key=keyring.envelope_key,
        signing_key_id=jwk_thumbprint(raw_public_bytes(keyring.envelope_key.public_key())),
        timeout_s=settings.delivery_timeout_s,
        allow_networks=tuple(settings.webhook_allow_networks),
        filedrop_root=settings.filedrop_root,
        smtp_url=settings.smtp_url,
        smtp_sender=settings.smtp_sender,
        public_url=settings.public_url,
    )


def sweep_grace(settings: Settings) -> timedelta:
    """How long past due a delivery must be before the sweeper presumes its message lost:
    two sweep intervals, so a message merely queued is not sent twice for nothing."""
    return timedelta(seconds=2 * settings.sweep_interval_s)
