"""``webhook``: an HTTPS POST of the envelope with Standard Webhooks headers.

``webhook-signature`` carries ``v1,<HMAC-SHA256>`` with the subscription's ``whsec_`` secret
(and, for 24 hours after a rotation, with the previous one too) made by the
``standardwebhooks`` package, and ``v1a,<Ed25519>`` with the hub's envelope key, published
at ``/.well-known/exchange/keys``. Both sign ``<webhook-id>.<webhook-timestamp>.<body>``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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

logger = logging.getLogger(__name__)

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


# Ranges Python's ``is_global`` still counts as global but that are not reachable public
# destinations: IETF protocol assignments, the deprecated 6to4 relay anycast, local-use NAT64.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",
        "192.88.99.0/24",
        "64:ff9b:1::/48",
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 segment identifiers
    )
)
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 2765)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
REFUSED = "the destination cannot be reached from this hub"


class DestinationRefused(ConfigRefused):
    """Raised when a destination is not public (nor operator-allowed) or cannot be resolved.
    Its message is the same whatever the reason, so a subscriber cannot map the hub's
    network or DNS with it; ``detail`` is for the operator's log."""

    def __init__(self, detail: str) -> None:
        super().__init__(REFUSED)
        self.detail = detail


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, translated, 6to4, Teredo (server
    and client), NAT64 and the deprecated IPv4-compatible form."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64 or address in IPV4_COMPATIBLE or address in IPV4_TRANSLATED:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """Whether an address is a globally reachable unicast destination, and so is every IPv4
    address embedded in it: an allow-list, not a list of what is private."""
    if not address.is_global or address.is_multicast:
        return False
    if any(address.version == net.version and address in net for net in NOT_GLOBAL):
        return False
    return all(is_public(inner) for inner in embedded_ipv4(address))


def resolve_allowed(url: str, context: ConnectorContext) -> IPAddress:
    """The address to connect to, after the SSRF guard: every address the name resolves to
    must be public, or inside a network the operator allowed; plain HTTP only to allowed
    networks. The connection then goes to that address, so a second DNS answer cannot
    swap in an internal one (DNS rebinding). The lookup takes at most the connector's
    timeout. Raises :class:`DestinationRefused`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]  # a literal address needs no lookup
    except ValueError:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = _resolved(host, port, deadline_s=context.timeout_s)
    allowed = [any(a in net for net in context.allow_networks) for a in addresses]
    for address, is_allowed in zip(addresses, allowed, strict=True):
        if not (is_allowed or is_public(address)):
            raise DestinationRefused(f"{host} resolves to {address}, which is not public")
    if parts.scheme != "https" and not all(allowed):
        raise ConfigRefused("plain http:// is allowed only to operator-allowed networks")
    return addresses[0]


# The system resolver cannot be interrupted, so lookups run on threads of their own and the
# caller waits at most its deadline: a subscriber's slow nameserver holds one of these, never
# a delivery thread. Few, because a lookup should take milliseconds.
RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="exchange-dns")


def _resolved(host: str, port: int, *, deadline_s: float) -> list[IPAddress]:
    lookup = RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=deadline_s)
    except TimeoutError:
        raise DestinationRefused(f"resolving {host} took over {deadline_s:g} s") from None
    except (socket.gaierror, UnicodeError) as error:  # UnicodeError: an overlong label
        raise DestinationRefused(f"cannot resolve {host}: {error}") from None
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
        except DestinationRefused as refused:
            logger.info("webhook destination refused", extra={"reason": refused.detail})
            raise

    def deliver(self, envelope: Envelope, config: WebhookConfig) -> Delivered:
        """One POST, within one deadline (the connector timeout) for all of it: resolving,
        connecting, TLS, sending and the answer's status and headers. A receiver that
        dribbles its answer byte by byte cannot hold a worker past it; its body is never
        read."""
        url = str(config.url)
        started = time.monotonic()
        try:
            address = resolve_allowed(url, self.context)
        except DestinationRefused as refused:
            # Retried like a connection failure, with the same words: whether the address
            # was refused or unreachable is for the operator's log only.
            logger.warning(
                "webhook destination refused",
                extra={"envelope": envelope.id, "reason": refused.detail},
            )
            raise RetryableFailure(REFUSED) from None
        except ConfigRefused as refused:
            raise PermanentFailure(str(refused)) from None
        parts = urlsplit(url)
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
        # What the lookup left of the attempt's one deadline; httpx's own timeouts (each
        # read, write, connect alone) are set to it too.
        deadline_s = max(0.0, self.context.timeout_s - (time.monotonic() - started))
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), deadline_s)
        try:
            status, retry_after = SENDER.post(
                httpx.Request(
                    "POST",
                    pinned,
                    content=envelope.body,
                    headers=headers,
                    extensions={"sni_hostname": parts.hostname or "", "timeout": timeouts},
                ),
                deadline_s=deadline_s,
            )
        except TimeoutError:
            raise RetryableFailure(
                f"no answer within {self.context.timeout_s:g} s", throttled=True
            ) from None
        except (httpx.HTTPError, OSError) as error:  # OSError: TLS errors httpx leaves as they are
            logger.warning(
                "webhook attempt failed",
                extra={"envelope": envelope.id, "reason": f"{type(error).__name__}: {error}"},
            )
            raise RetryableFailure(REFUSED) from None
        if 200 <= status < 300:
            return Delivered(status)
        if status == 410:
            raise PermanentFailure("the receiver answered 410 Gone", status_code=status, gone=True)
        raise RetryableFailure(
            f"the receiver answered {status}",
            status_code=status,
            retry_after_s=parse_retry_after(retry_after, timestamp),
            throttled=status == 429,
        )


# How much longer than an attempt's deadline a thread waits for the loop to answer.
STUCK_LOOP_GRACE_S = 1.0


class _Sender:
    """The process's one event loop for webhook attempts, on a thread of its own: each
    attempt is a coroutine run there, where it was an ``asyncio.run`` of its own (a new
    event loop, and a new client, for every attempt cost about 4 ms of CPU, ten times the
    POST itself). Every attempt still has a connection of its own, opened for it and closed
    after it: nothing of one delivery's exchange (a receiver's stray bytes, a connection
    another agency's receiver left in a bad state) can reach another's.

    Our own few lines: no library we use runs coroutines for worker threads on a shared loop
    (anyio's portal does, with a thread per portal and more machinery than this needs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # Started with the first attempt; again in a process forked after it, or if the
            # thread ever stopped.
            alive = self._thread is not None and self._thread.is_alive()
            if self._loop is None or self._pid != os.getpid() or not alive:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="exchange-webhooks", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    def post(self, request: httpx.Request, *, deadline_s: float) -> tuple[int, str | None]:
        """The status and ``Retry-After`` of ``request``, within ``deadline_s``
        (:class:`TimeoutError` past it)."""
        answer = asyncio.run_coroutine_threadsafe(_post(request, deadline_s), self.loop())
        try:
            # The coroutine keeps the deadline; this guards against a loop that is stuck.
            return answer.result(timeout=deadline_s + STUCK_LOOP_GRACE_S)
        except TimeoutError:
            answer.cancel()
            raise


async def _post(request: httpx.Request, deadline_s: float) -> tuple[int, str | None]:
    """POST and return the status and ``Retry-After``, all within ``deadline_s``
    (:class:`TimeoutError` past it), over a connection of its own. httpx's own timeouts
    apply to each read and write alone, so a peer sending a byte now and then would never
    trip them; cancelling the whole exchange does. A transport follows no redirect and
    keeps no cookie; the body of the answer is never read (the status and headers are the
    answer)."""
    async with (
        asyncio.timeout(deadline_s),
        httpx.AsyncHTTPTransport(verify=tls_context()) as transport,
    ):
        response = await transport.handle_async_request(request)
        await response.aclose()
        return response.status_code, response.headers.get("retry-after")


SENDER = _Sender()
