"""Intake fixtures: the demo agencies (from the console's fixtures) and a registered
text-message gateway for the PIMPASA of Tanjakan Mekar, with one officer who reports by
text message."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from connectors.base import InboundMessage
from connectors.sms_gateway import SmsGatewayConfig, SmsGatewayIntake
from exchange.accounts import service as accounts
from exchange.accounts.models import Role
from exchange.agencies import service as agencies
from exchange.hub import Hub
from exchange.intake import service
from exchange.regions import service as regions
from tests.console.conftest import Officer, demo, settings

__all__ = ["demo", "settings"]

OFFICER_PHONE = "0812-3456-7890"  # as the officer wrote it on the form
DIRECTORY = """code,name
36,BANTEN
36.03,KAB. TANGERANG
36.03.11,RAJEG
36.03.11.2009,TANJAKAN MEKAR
36.03.11.2010,SUKAMANAH
"""


@dataclass
class Gateway:
    intake_id: str
    config: SmsGatewayConfig
    officer: Officer  # who reports by text message from OFFICER_PHONE

    def request(self, *messages: tuple[str, str, str]) -> tuple[dict[str, str], bytes]:
        """A batch as the gateway posts it: (id, from, text) per message, signed."""
        inbound = [InboundMessage(*m) for m in messages]
        return SmsGatewayIntake().signed_request(inbound, self.config)


@pytest.fixture
def gateway(hub: Hub, demo: dict[str, dict[str, str]]) -> Gateway:
    with hub.session() as session:
        regions.import_directory(session, lines=DIRECTORY.splitlines(), actor="test")
        intake, secrets = service.register(
            session,
            agency_id="pimpasa-tanjakan-mekar",
            plugin="sms-gateway",
            label="SMS desa",
            sealer=hub.keyring.sealer,
            actor="test",
        )
        _, password = accounts.create_user(
            session,
            agency=agencies.get_agency(session, "pimpasa-tanjakan-mekar"),
            username="dewi.pimpasa",
            display_name="Dewi",
            roles=frozenset({Role.reporter}),
            actor="test",
            phone=OFFICER_PHONE,
        )
    officer = Officer("dewi.pimpasa", password, "pimpasa-tanjakan-mekar")
    return Gateway(intake.id, SmsGatewayConfig(secret=secrets["secret"]), officer)
