"""A contract test kit for connectors. An integrator proves a connector by subclassing
:class:`ConnectorContract` in a pytest module::

    class TestSmsConnector(ConnectorContract):
        connector_class = SmsConnector

        def valid_config(self, tmp_path): ...
        def received_ids(self, tmp_path, config): ...   # what the destination got
        def broken_config(self, tmp_path): ...          # a destination that fails

and running pytest (the kit itself does not need pytest: it ships in the hub's wheel); an
intake subclasses :class:`IntakeContract` the same way. The connector kit checks what the
hub relies on: the protocol's shape, the entry point, config validation, delivery of a real
CloudEvents envelope, that delivering the same envelope twice is harmless (delivery is
at-least-once), that failures are the two typed exceptions and nothing else, and that
instances built from different configs share nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from connectors.base import (
    ChannelAnswer,
    Connector,
    ConnectorContext,
    Delivered,
    Envelope,
    InboundMessage,
    Intake,
    IntakeRefused,
    IntakeReply,
    PermanentFailure,
    RetryableFailure,
)
from connectors.registry import installed, intakes, plugins

CONTRACT_RECIPIENT = "polda-banten"  # the agency the sample envelopes are for


def sample_envelope(**attributes: Any) -> Envelope:
    """An envelope like the hub's: a structured-mode CloudEvent with a fresh id."""
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "source": "/agencies/pimpasa-tanjakan-mekar",
        "recipient": CONTRACT_RECIPIENT,
        "type": "exchange.report.village-early-warning.v1",
        "time": datetime.now(UTC),
        "subject": uuid.uuid4().hex,
        "datacontenttype": "application/json",
        "tlp": "AMBER",
        "region": "36.03.11.2009",
        "severity": "high",
    } | attributes
    data = {"village_code": "36.03.11.2009", "severity": "high", "indicators": ["no_contract"]}
    body = to_structured_event(CloudEvent(dict(values), data)).body
    return Envelope(id=values["id"], attributes=values, body=body)


class ConnectorContract:
    connector_class: ClassVar[Any]

    # --- what a subclass provides ------------------------------------------------------------

    def valid_config(self, tmp_path: Path) -> dict[str, Any]:
        """A config that delivers somewhere :meth:`received_ids` can look."""
        raise NotImplementedError

    def received_ids(self, tmp_path: Path, config: dict[str, Any]) -> list[str]:
        """The envelope ids the destination of ``config`` has received, with repeats."""
        raise NotImplementedError

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        """A config whose destination fails (unreachable, refusing)."""
        raise NotImplementedError

    def invalid_configs(self) -> list[dict[str, Any]]:
        """Configs the config model must refuse."""
        return []

    def context(self, tmp_path: Path) -> ConnectorContext:
        """The operator's settings the connector runs under; override to add yours."""
        return ConnectorContext(
            signing_key=Ed25519PrivateKey.generate(),
            signing_key_id="contract-test",
            recipient=CONTRACT_RECIPIENT,
        )

    # --- the contract ------------------------------------------------------------------------

    def build(self, tmp_path: Path) -> Connector:
        connector: Connector = self.connector_class(self.context(tmp_path))
        return connector

    def config(self, raw: dict[str, Any]) -> BaseModel:
        model: BaseModel = self.connector_class.config_model.model_validate(raw)
        return model

    def test_has_the_protocols_shape(self, tmp_path: Path) -> None:
        connector = self.build(tmp_path)
        assert isinstance(connector, Connector)
        assert isinstance(self.connector_class.name, str)
        assert issubclass(self.connector_class.config_model, BaseModel)

    def test_is_found_through_its_entry_point(self) -> None:
        plugins.cache_clear()
        assert installed().get(self.connector_class.name) is self.connector_class

    def test_refuses_invalid_configs(self) -> None:
        for raw in self.invalid_configs():
            try:
                self.config(raw)
            except ValidationError:
                continue
            raise AssertionError(f"the config model accepted {raw!r}")

    def test_delivers_an_envelope(self, tmp_path: Path) -> None:
        raw = self.valid_config(tmp_path)
        connector = self.build(tmp_path)
        connector.check(self.config(raw))
        envelope = sample_envelope()
        assert isinstance(connector.deliver(envelope, self.config(raw)), Delivered)
        assert self.received_ids(tmp_path, raw) == [envelope.id]

    def test_delivering_twice_is_harmless(self, tmp_path: Path) -> None:
        raw = self.valid_config(tmp_path)
        envelope = sample_envelope()
        for _ in range(2):
            self.build(tmp_path).deliver(envelope, self.config(raw))
        assert set(self.received_ids(tmp_path, raw)) == {envelope.id}

    def test_failures_are_typed(self, tmp_path: Path) -> None:
        raw = self.broken_config(tmp_path)
        try:
            self.build(tmp_path).deliver(sample_envelope(), self.config(raw))
        except (RetryableFailure, PermanentFailure):
            return
        raise AssertionError("delivering to a broken destination raised no typed failure")

    def test_instances_share_nothing(self, tmp_path: Path) -> None:
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        raw_first, raw_second = self.valid_config(first), self.valid_config(second)
        one, two = sample_envelope(), sample_envelope()
        self.build(first).deliver(one, self.config(raw_first))
        self.build(second).deliver(two, self.config(raw_second))
        assert self.received_ids(first, raw_first) == [one.id]
        assert self.received_ids(second, raw_second) == [two.id]


# --- intakes ----------------------------------------------------------------------------------


def sample_messages() -> list[InboundMessage]:
    """Messages as a channel brings them: a report, an unreadable one, an odd sender."""
    return [
        InboundMessage(uuid.uuid4().hex, "+6281234567890", "TPPO 36.03.11.2009 TINGGI calo 5 MY"),
        InboundMessage(uuid.uuid4().hex, "081234567891", "halo, apa kabar?"),
    ]


class IntakeContract:
    """The contract of an intake. A subclass names ``intake_class``; override
    :meth:`valid_config` when the config model needs values. The kit checks: the protocol's
    shape and the entry point; that the intake reads back, message for message, a request
    it signed itself; that it refuses a changed body, another config's signature and a
    request without its credentials, raising nothing but :class:`IntakeRefused`; and that
    its answer to the channel is a 2xx with a body."""

    intake_class: ClassVar[Any]

    def valid_config(self) -> BaseModel:
        config: BaseModel = self.intake_class.config_model()
        return config

    def build(self) -> Intake:
        intake: Intake = self.intake_class()
        return intake

    def test_has_the_protocols_shape(self) -> None:
        assert isinstance(self.build(), Intake)
        assert isinstance(self.intake_class.name, str)
        assert issubclass(self.intake_class.config_model, BaseModel)

    def test_is_found_through_its_entry_point(self) -> None:
        plugins.cache_clear()
        assert intakes().get(self.intake_class.name) is self.intake_class

    def test_reads_back_its_own_signed_request(self) -> None:
        config, messages = self.valid_config(), sample_messages()
        headers, body = self.build().signed_request(messages, config)
        assert self.build().open(headers, body, config) == messages

    def test_refuses_a_changed_body(self) -> None:
        config = self.valid_config()
        headers, body = self.build().signed_request(sample_messages(), config)
        self._refused(headers, body.replace(b"TINGGI", b"RENDAH"), config)

    def test_refuses_another_configs_signature(self) -> None:
        headers, body = self.build().signed_request(sample_messages(), self.valid_config())
        self._refused(headers, body, self.valid_config())

    def test_refuses_a_request_without_its_credentials(self) -> None:
        config = self.valid_config()
        _, body = self.build().signed_request(sample_messages(), config)
        self._refused({"content-type": "application/json"}, body, config)

    def test_answers_the_channel(self) -> None:
        replies = [IntakeReply(m.message_id, m.sender, "diterima") for m in sample_messages()]
        answer = self.build().answer(replies, self.valid_config())
        assert isinstance(answer, ChannelAnswer)
        assert 200 <= answer.status_code < 300
        assert answer.body

    def _refused(self, headers: dict[str, str], body: bytes, config: BaseModel) -> None:
        try:
            self.build().open(headers, body, config)
        except IntakeRefused as refused:
            status = refused.status_code
        else:
            raise AssertionError("the intake read a request it should have refused")
        assert 400 <= status < 500
