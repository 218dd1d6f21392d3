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
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
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
        try:
            status, retry_after = CONNECTIONS.post(
                (parts.scheme, netloc, parts.hostname or ""),
                pinned,
                body=envelope.body,
                headers=headers,
                # What the lookup left of the attempt's one deadline.
                deadline_s=max(0.0, self.context.timeout_s - (time.monotonic() - started)),
            )
        except TimeoutError:
            raise RetryableFailure(
                f"no answer within {self.context.timeout_s:g} s", throttled=True
            ) from None
        except httpx.HTTPError as error:
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


# Connections to receivers are kept alive between deliveries: a fresh client, connection
# and event loop for every attempt cost about 4 ms of CPU, ten times the POST itself.
MAX_DESTINATIONS = 256  # pools kept; the least recently used one is closed past this
CONNECTIONS_PER_DESTINATION = 8  # above the attempts one agency may have under way (4)
# Idle connections are closed before common servers close theirs (uvicorn's and Node's
# default is 5 s), so an attempt seldom meets a connection its receiver is just closing.
KEEPALIVE_S = 4.0
# The answer's body is read only so that its connection can carry the next delivery: at most
# this much, for at most this long after the status and headers; else the connection closes.
BODY_CAP_BYTES = 64 * 1024
BODY_GRACE_S = 0.5

Destination = tuple[str, str, str]  # scheme, pinned address and port, TLS server name


class _Connections:
    """The process's kept-alive connections to receivers: one event loop thread, and one
    httpx transport (a connection pool) per destination. A destination is the scheme, the
    pinned address and port and the TLS server name, so a connection made for one name is
    never used for another, and a name that resolves elsewhere gets a pool of its own
    (the SSRF guard pins each attempt's address). Transports keep no cookies or settings of
    an agency: a delivery's headers are its own; its connector is still built afresh.

    Our own few lines: an httpx client pools by origin only (here the pinned address), and
    the deliveries come from worker threads that each would otherwise run a loop of their
    own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._pools: OrderedDict[Destination, httpx.AsyncHTTPTransport] = OrderedDict()
        self._closing: set[asyncio.Future[None]] = set()  # held until done (asyncio's advice)

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # Started with the first delivery, and again in a process forked after it.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="exchange-webhooks", daemon=True
                ).start()
                self._loop, self._pid, self._pools = loop, os.getpid(), OrderedDict()
            return self._loop

    def pool(self, destination: Destination) -> httpx.AsyncHTTPTransport:
        """The destination's pool (on the loop's thread only)."""
        pool = self._pools.pop(destination, None)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(
                verify=tls_context(),
                limits=httpx.Limits(
                    max_connections=CONNECTIONS_PER_DESTINATION,
                    max_keepalive_connections=CONNECTIONS_PER_DESTINATION,
                    keepalive_expiry=KEEPALIVE_S,
                ),
            )
            if len(self._pools) >= MAX_DESTINATIONS:
                _, oldest = self._pools.popitem(last=False)
                closing = asyncio.ensure_future(oldest.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        self._pools[destination] = pool
        return pool

    def post(
        self,
        destination: Destination,
        url: str,
        *,
        body: bytes,
        headers: dict[str, str],
        deadline_s: float,
    ) -> tuple[int, str | None]:
        """The status and ``Retry-After`` of a POST through the destination's pool."""
        answer = asyncio.run_coroutine_threadsafe(
            self._post(destination, url, body=body, headers=headers, deadline_s=deadline_s),
            self.loop(),
        )
        try:
            # The coroutine keeps the deadline itself; this only guards against a stuck loop.
            return answer.result(timeout=deadline_s + BODY_GRACE_S + 5)
        except FutureTimeout:
            answer.cancel()
            raise TimeoutError from None

    async def _post(
        self,
        destination: Destination,
        url: str,
        *,
        body: bytes,
        headers: dict[str, str],
        deadline_s: float,
    ) -> tuple[int, str | None]:
        """POST and return the status and ``Retry-After``, all within ``deadline_s``
        (:class:`TimeoutError` past it). httpx's own timeouts apply to each read and write
        alone, so a peer sending a byte now and then would never trip them; cancelling the
        whole exchange does. No redirect is followed (a transport does not)."""
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers=headers,
            extensions={
                "sni_hostname": destination[2],
                "timeout": {phase: deadline_s for phase in ("connect", "read", "write", "pool")},
            },
        )
        async with asyncio.timeout(deadline_s):
            response = await self.pool(destination).handle_async_request(request)
        try:
            # The status and headers are the answer; the body is drained, briefly and
            # capped, only to keep the connection (a body left unread closes it).
            async with asyncio.timeout(BODY_GRACE_S):
                drained = 0
                async for chunk in response.aiter_raw():
                    drained += len(chunk)
                    if drained > BODY_CAP_BYTES:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # the connection is closed below; the answer stands
        finally:
            await response.aclose()
        return response.status_code, response.headers.get("retry-after")


CONNECTIONS = _Connections()
