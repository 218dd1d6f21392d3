"""``email``: a notice that a report is waiting, sent over SMTP. It names the report type,
region, severity and TLP and links to the inbox; it never carries the report's data, since
mail crosses systems the hub cannot vouch for."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import (
    ConfigRefused,
    ConnectorContext,
    Delivered,
    Envelope,
    PermanentFailure,
    RetryableFailure,
)

ADDRESS_PATTERN = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(
        min_length=1, max_length=20, description="Addresses that receive the notices."
    )

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(ADDRESS_PATTERN, address):
                raise ValueError(f"not an email address: {address!r}")
        return value


def notice(envelope: Envelope, config: EmailConfig, context: ConnectorContext) -> EmailMessage:
    attributes = envelope.attributes
    message = EmailMessage()
    message["From"] = context.smtp_sender
    message["To"] = ", ".join(config.to)
    message["Subject"] = (
        f"[exchange] {attributes.get('severity', '-')} {attributes['type']} "
        f"in {attributes.get('region', '-')}"
    )
    message["Message-ID"] = f"<{envelope.id}@exchange-hub>"
    message.set_content(
        "A report is waiting for your agency in the exchange hub.\n\n"
        f"type:     {attributes['type']}\n"
        f"region:   {attributes.get('region', '-')}\n"
        f"severity: {attributes.get('severity', '-')}\n"
        f"TLP:      {attributes.get('tlp', '-')}\n"
        f"envelope: {envelope.id}\n\n"
        f"Read it in your inbox: {context.public_url.rstrip('/')}/v1/inbox\n"
    )
    return message


class EmailConnector:
    name: ClassVar[str] = "email"
    config_model: ClassVar[type[BaseModel]] = EmailConfig

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def check(self, config: EmailConfig) -> None:
        if not self.context.smtp_url:
            raise ConfigRefused("this hub has no mail server (EXCHANGE_SMTP_URL)")

    def deliver(self, envelope: Envelope, config: EmailConfig) -> Delivered:
        if not self.context.smtp_url:
            raise PermanentFailure("this hub has no mail server (EXCHANGE_SMTP_URL)")
        server = urlsplit(self.context.smtp_url)
        secure = server.scheme == "smtps"
        smtp_class = smtplib.SMTP_SSL if secure else smtplib.SMTP
        try:
            with smtp_class(
                server.hostname or "localhost",
                server.port or (465 if secure else 25),
                timeout=self.context.timeout_s,
            ) as smtp:
                if not secure and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                if server.username:
                    smtp.login(unquote(server.username), unquote(server.password or ""))
                smtp.send_message(notice(envelope, config, self.context))
        except smtplib.SMTPRecipientsRefused as refused:
            raise PermanentFailure(f"recipients refused: {sorted(refused.recipients)}") from None
        except (smtplib.SMTPException, OSError) as error:
            raise RetryableFailure(f"{type(error).__name__}: {str(error)[:120]}") from None
        return Delivered(detail=f"notice sent to {len(config.to)} address(es)")
