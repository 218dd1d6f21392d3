"""The text-message gateway intake: an SMS or WhatsApp gateway the agency runs posts the
messages it received to the hub, signed like a Standard Webhooks delivery with the secret
the hub issued when the intake was registered, and sends the hub's replies back to each
sender.

The request (``Content-Type: application/json``), with the headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` of the Standard Webhooks specification::

    {"messages": [{"id": "gw-000123", "from": "+6281234567890",
                   "text": "TPPO 36.03.11.2009 TINGGI calo 5 MY Rombongan malam ini"}]}

The answer, one reply per message, for the gateway to send::

    {"replies": [{"id": "gw-000123", "to": "+6281234567890", "text": "Laporan diterima ..."}]}
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connectors.base import ChannelAnswer, InboundMessage, IntakeRefused, IntakeReply
from connectors.webhook import new_secret

MAX_MESSAGES = 100  # per request: a gateway batches what arrived while it waited


class SmsGatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(
        default_factory=new_secret,
        description="The `whsec_` secret the gateway signs with; generated and shown once.",
        json_schema_extra={"writeOnly": True},
    )

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: SecretStr) -> SecretStr:
        try:
            Webhook(value.get_secret_value())
        except Exception:
            raise ValueError("must be a Standard Webhooks secret: whsec_<base64>") from None
        return value


class _Message(BaseModel):
    # Lenient on what strangers control (the sender's number, the text): the hub answers a
    # message it cannot use on its own, without failing the rest of the batch.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=100)
    sender: str = Field(alias="from", max_length=1000)
    text: str = Field(max_length=100_000)


class _Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: list[_Message] = Field(min_length=1, max_length=MAX_MESSAGES)


class SmsGatewayIntake:
    """Reads a gateway's signed batch of messages; answers with one reply per message."""

    name: ClassVar[str] = "sms-gateway"
    config_model: ClassVar[type[BaseModel]] = SmsGatewayConfig

    def open(
        self, headers: Mapping[str, str], body: bytes, config: SmsGatewayConfig
    ) -> list[InboundMessage]:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            # Checks the HMAC and that the timestamp is within five minutes: a request
            # captured on the way cannot be replayed later (and a replay within the window
            # submits nothing twice: the hub keeps each message id it has seen).
            Webhook(config.secret.get_secret_value()).verify(body, lowered, json_parse=False)
        except WebhookVerificationError as refused:
            raise IntakeRefused(f"signature: {refused}") from None
        except Exception:  # malformed headers or body bytes: not the gateway's request
            raise IntakeRefused("signature: malformed") from None
        try:
            batch = _Batch.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError):
            raise IntakeRefused("not a batch of messages", status_code=400) from None
        return [InboundMessage(m.id, m.sender, m.text) for m in batch.messages]

    def answer(self, replies: list[IntakeReply], config: SmsGatewayConfig) -> ChannelAnswer:
        document = {
            "replies": [{"id": r.message_id, "to": r.recipient, "text": r.text} for r in replies]
        }
        return ChannelAnswer(200, json.dumps(document).encode())

    def signed_request(
        self, messages: list[InboundMessage], config: SmsGatewayConfig
    ) -> tuple[dict[str, str], bytes]:
        document: dict[str, Any] = {
            "messages": [{"id": m.message_id, "from": m.sender, "text": m.text} for m in messages]
        }
        body = json.dumps(document, ensure_ascii=False).encode()
        request_id = f"msg_{uuid.uuid4().hex}"
        timestamp = int(time.time())
        signature = Webhook(config.secret.get_secret_value()).sign(
            request_id, datetime.fromtimestamp(timestamp, UTC), body.decode()
        )
        headers = {
            "content-type": "application/json",
            "webhook-id": request_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        return headers, body
