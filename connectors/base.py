"""The connector protocol: what the hub asks of every way of delivering an envelope.

A connector is a class with a ``name``, a pydantic ``config_model`` (one subscription's
settings: an address, a directory, a secret), ``check(config)`` (can this deployment deliver
there at all?) and ``deliver(envelope, config)``. The hub builds a new instance for every
delivery, passing a :class:`ConnectorContext` with what the operator configured; nothing an
instance holds survives into another agency's delivery.

``deliver`` returns :class:`Delivered` or raises :class:`RetryableFailure` (the hub tries
again on its schedule; ``retry_after_s`` asks for a later time, ``throttled`` marks a 429 or
a timeout) or :class:`PermanentFailure` (the delivery is dead; ``gone`` also disables the
subscription, as an HTTP 410 does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, SecretStr

ENVELOPE_CONTENT_TYPE = "application/cloudevents+json"
SECRET_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class Envelope:
    """One CloudEvent (structured JSON mode) for one recipient. ``id`` is stable across
    retries and replays, so recipients deduplicate by it."""

    id: str
    attributes: Mapping[str, Any]  # CloudEvents context attributes and extensions
    body: bytes  # the serialised event, exactly as sent
    content_type: str = ENVELOPE_CONTENT_TYPE


@dataclass(frozen=True)
class ConnectorContext:
    """What the operator configured, handed to each connector instance."""

    signing_key: Ed25519PrivateKey  # the hub's envelope key, published at /.well-known
    signing_key_id: str
    timeout_s: float = 15.0
    allow_networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    filedrop_root: Path | None = None
    smtp_url: str | None = None
    smtp_sender: str = "exchange-hub@localhost"
    public_url: str = "http://127.0.0.1:8000"
    # The agency this instance delivers to (or whose subscription it checks): set by the hub
    # for each delivery, so a connector can keep agencies apart (filedrop folders).
    recipient: str = ""


@dataclass(frozen=True)
class Delivered:
    status_code: int | None = None
    detail: str = ""


class ConnectorFailure(Exception):
    """Raised by a connector when an envelope was not delivered."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RetryableFailure(ConnectorFailure):
    """Raised when a later attempt may succeed (network error, 5xx, 429, timeout)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after_s = retry_after_s
        self.throttled = throttled


class PermanentFailure(ConnectorFailure):
    """Raised when retrying cannot help; ``gone`` means the recipient asked to stop."""

    def __init__(self, message: str, *, status_code: int | None = None, gone: bool = False):
        super().__init__(message, status_code=status_code)
        self.gone = gone


class ConfigRefused(ValueError):
    """Raised by ``check`` when this deployment will not deliver to the configured place."""


@runtime_checkable
class Connector(Protocol):
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def check(self, config: Any) -> None: ...

    def deliver(self, envelope: Envelope, config: Any) -> Delivered: ...


class ConnectorFactory(Protocol):
    """What the entry point names: usually the connector class itself."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __call__(self, context: ConnectorContext) -> Connector: ...


# --- intakes: the other direction -----------------------------------------------------------


@dataclass(frozen=True)
class InboundMessage:
    """One message an outside channel received (a text message, a chat message), as the
    intake read it from the channel's request. ``message_id`` is the channel's own id: the
    hub submits at most one report per message id, however often the channel retries."""

    message_id: str
    sender: str  # the sender's address on the channel: a phone number for SMS or WhatsApp
    text: str


@dataclass(frozen=True)
class IntakeReply:
    """What the hub made of one message, for the channel to send back to its sender."""

    message_id: str
    recipient: str
    text: str


@dataclass(frozen=True)
class ChannelAnswer:
    """The HTTP answer an intake gives the channel's request."""

    status_code: int
    body: bytes
    content_type: str = "application/json"


class IntakeRefused(Exception):
    """Raised by ``open`` when a request is not the channel's (bad or missing signature,
    too old, malformed): the hub answers ``status_code`` and reads nothing from it."""

    def __init__(self, message: str, *, status_code: int = 401) -> None:
        super().__init__(message)
        self.status_code = status_code


@runtime_checkable
class Intake(Protocol):
    """Receives messages from an outside channel. The hub calls ``open`` on each request the
    channel sends to the intake's endpoint, turns each message into a submission (or a
    draft) on behalf of the registered user it comes from, and hands ``answer`` a reply per
    message, to send back through the channel."""

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def open(
        self, headers: Mapping[str, str], body: bytes, config: Any
    ) -> list[InboundMessage]: ...

    def answer(self, replies: list[IntakeReply], config: Any) -> ChannelAnswer: ...

    def signed_request(
        self, messages: list[InboundMessage], config: Any
    ) -> tuple[dict[str, str], bytes]:
        """A request as the channel would send it, for the contract kit and the docs."""
        ...


class IntakeFactory(Protocol):
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __call__(self) -> Intake: ...


class RotatingSecretConfig(BaseModel):
    """A config holding a shared secret that can rotate: the previous one stays valid for
    24 hours so receivers can switch over without losing deliveries. A subclass gives
    ``secret`` a ``default_factory``: that is how a new secret is made."""

    secret: SecretStr
    previous_secret: SecretStr | None = None
    previous_expires_at: datetime | None = None

    def live_secrets(self, now: datetime) -> list[str]:
        live = [self.secret.get_secret_value()]
        if (
            self.previous_secret is not None
            and self.previous_expires_at is not None
            and now < self.previous_expires_at
        ):
            live.append(self.previous_secret.get_secret_value())
        return live

    def rotated(self, now: datetime) -> RotatingSecretConfig:
        """A copy with a new secret; the current one becomes the previous, for 24 hours."""
        fresh = type(self).model_fields["secret"].get_default(call_default_factory=True)
        return self.model_copy(
            update={
                "secret": fresh,
                "previous_secret": self.secret,
                "previous_expires_at": now + SECRET_OVERLAP,
            }
        )


def revealed(config: BaseModel) -> dict[str, Any]:
    """The config as JSON values with its (top-level) secrets in clear: for sealing at rest,
    never for showing."""
    data: dict[str, Any] = config.model_dump(mode="json")
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    return data


def shown(config: BaseModel) -> dict[str, Any]:
    """The config as its owner may see it again: secrets masked."""
    data: dict[str, Any] = config.model_dump(mode="json")
    return data
