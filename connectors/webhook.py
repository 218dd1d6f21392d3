"""``webhook``: an HTTPS POST of the envelope with Standard Webhooks headers.

``webhook-signature`` carries ``v1,<HMAC-SHA256>`` with the subscription's ``whsec_`` secret
(and, for 24 hours after a rotation, with the previous one too) made by the
``standardwebhooks`` package, and ``v1a,<Ed25519>`` with the hub's envelope key, published
at ``/.well-known/exchange/keys``. Both sign ``<webhook-id>.<webhook-timestamp>.<body>``.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import secrets
import socket
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from math import floor
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, field_validator
from standardwebhooks.webhooks import Webhook

from connectors.base import (
    ConfigRefused,
    ConnectorContext,
    Delivered,
    Envelope,
    PermanentFailure,
    RetryableFailure,
    RotatingSecretConfig,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's public prefix
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's CA bundle, loaded once per process: loading it costs ~20 ms, more than a
    whole delivery. It holds no agency's settings, so sharing it shares nothing."""
    return ssl.create_default_context()


def new_secret() -> SecretStr:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SecretStr(SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode())


class WebhookConfig(RotatingSecretConfig):
    url: AnyHttpUrl = Field(
        description="Where to POST envelopes (https://, or http:// to an operator-allowed network)."
    )
    secret: SecretStr = Field(
        default_factory=new_secret,
        description="The `whsec_` secret; generated when left out and shown once.",
    )

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        try:
            Webhook(text)
        except Exception:
            raise ValueError("must be a Standard Webhooks secret: whsec_<base64>") from None
        if not text.startswith(SECRET_PREFIX) or len(text) < len(SECRET_PREFIX) + 32:
            raise ValueError("must be a Standard Webhooks secret: whsec_<base64 of 24+ bytes>")
        return value


def _is_internal(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (
            isinstance(address, ipaddress.IPv6Address)
            and address.ipv4_mapped is not None
            and _is_internal(address.ipv4_mapped)
        )
    )


def resolve_allowed(url: str, context: ConnectorContext) -> IPAddress:
    """The address to connect to, after the SSRF guard: every address the name resolves to
    must be public, or inside a network the operator allowed; plain HTTP only to allowed
    networks. The connection then goes to that address, so a second DNS answer cannot
    swap in an internal one (DNS rebinding)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]  # a literal address needs no lookup
    except ValueError:
        addresses = _resolved(host, parts.port or (443 if parts.scheme == "https" else 80))
    allowed = [any(a in net for net in context.allow_networks) for a in addresses]
    for address, is_allowed in zip(addresses, allowed, strict=True):
        if _is_internal(address) and not is_allowed:
            raise ConfigRefused(
                f"{host} resolves to {address}, a private, loopback or link-local address "
                "the operator has not allowed"
            )
    if parts.scheme != "https" and not all(allowed):
        raise ConfigRefused("plain http:// is allowed only to operator-allowed networks")
    return addresses[0]


def _resolved(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise RetryableFailure(f"cannot resolve {host}: {error.strerror}") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - now).total_seconds())


def signature_header(
    envelope: Envelope, config: WebhookConfig, context: ConnectorContext, timestamp: datetime
) -> str:
    body = envelope.body.decode()
    hmacs = [Webhook(s).sign(envelope.id, timestamp, body) for s in config.live_secrets(timestamp)]
    signed = f"{envelope.id}.{floor(timestamp.timestamp())}.{body}".encode()
    ed25519 = base64.b64encode(context.signing_key.sign(signed)).decode()
    return " ".join([*hmacs, f"v1a,{ed25519}"])


class WebhookConnector:
    name: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def check(self, config: WebhookConfig) -> None:
        try:
            resolve_allowed(str(config.url), self.context)
        except RetryableFailure as failure:
            raise ConfigRefused(str(failure)) from None

    def deliver(self, envelope: Envelope, config: WebhookConfig) -> Delivered:
        url = str(config.url)
        try:
            address = resolve_allowed(url, self.context)
        except ConfigRefused as refused:
            raise PermanentFailure(str(refused)) from None
        parts = urlsplit(url)
        host = parts.hostname or ""
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        timestamp = datetime.now(UTC)
        headers = {
            "content-type": envelope.content_type,
            "host": parts.netloc.rsplit("@", 1)[-1],
            "user-agent": "exchange-hub",
            "webhook-id": envelope.id,
            "webhook-timestamp": str(floor(timestamp.timestamp())),
            "webhook-signature": signature_header(envelope, config, self.context, timestamp),
        }
        try:
            with httpx.Client(
                timeout=self.context.timeout_s, follow_redirects=False, verify=tls_context()
            ) as client:
                response = client.post(
                    pinned,
                    content=envelope.body,
                    headers=headers,
                    extensions={"sni_hostname": host},
                )
        except httpx.TimeoutException:
            raise RetryableFailure(
                f"no answer within {self.context.timeout_s:g} s", throttled=True
            ) from None
        except httpx.HTTPError as error:
            raise RetryableFailure(f"{type(error).__name__}: {str(error)[:120]}") from None
        status = response.status_code
        if 200 <= status < 300:
            return Delivered(status)
        if status == 410:
            raise PermanentFailure("the receiver answered 410 Gone", status_code=status, gone=True)
        raise RetryableFailure(
            f"the receiver answered {status}",
            status_code=status,
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), timestamp),
            throttled=status == 429,
        )
