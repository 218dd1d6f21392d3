"""``ntfy``: a short push notice ("high village-early-warning in 36.03.11.2009, see your
inbox") POSTed to an ntfy-style topic URL, for officers on their phones. Like the email
connector it carries no personal data: the notice points at the hub's inbox."""

from __future__ import annotations

from typing import ClassVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr

from connectors.base import (
    ConfigRefused,
    ConnectorContext,
    Delivered,
    Envelope,
    PermanentFailure,
    RetryableFailure,
)
from connectors.webhook import resolve_allowed

PRIORITY = {"low": "2", "medium": "3", "high": "4", "critical": "5"}


class NtfyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="The topic's URL, e.g. https://ntfy.example/tppo-banten")
    token: SecretStr | None = Field(default=None, description="Access token, if the topic has one.")


class NtfyConnector:
    name: ClassVar[str] = "ntfy"
    config_model: ClassVar[type[BaseModel]] = NtfyConfig

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def check(self, config: NtfyConfig) -> None:
        # The hub's SSRF guard: no private or loopback address unless the operator allows it.
        resolve_allowed(str(config.url), self.context)

    def deliver(self, envelope: Envelope, config: NtfyConfig) -> Delivered:
        try:
            resolve_allowed(str(config.url), self.context)
        except ConfigRefused as refused:
            raise PermanentFailure(str(refused)) from None
        attributes = envelope.attributes
        severity = str(attributes.get("severity", "medium"))
        headers = {
            "Title": f"{severity} {attributes['type']}",
            "Priority": PRIORITY.get(severity, "3"),
            "X-Exchange-Envelope": envelope.id,
        }
        if config.token is not None:
            headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
        text = (
            f"{severity} {attributes['type']} in {attributes.get('region', '-')}: "
            f"see {self.context.public_url.rstrip('/')}/v1/inbox"
        )
        try:
            response = httpx.post(
                str(config.url),
                content=text.encode(),
                headers=headers,
                timeout=self.context.timeout_s,
                follow_redirects=False,
            )
        except httpx.HTTPError as error:
            raise RetryableFailure(f"{type(error).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableFailure(
                f"the topic answered {response.status_code}",
                status_code=response.status_code,
                throttled=response.status_code == 429,
            )
        if response.status_code >= 300:
            raise PermanentFailure(
                f"the topic answered {response.status_code}", status_code=response.status_code
            )
        return Delivered(response.status_code)
