"""The text-message gateway intake passes the intake contract kit."""

from __future__ import annotations

from connectors.sms_gateway import SmsGatewayIntake
from connectors.testing import IntakeContract


class TestSmsGatewayIntake(IntakeContract):
    intake_class = SmsGatewayIntake
