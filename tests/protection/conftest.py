"""Data protection runs on the delivery suite's fast hub and its fixtures."""

from __future__ import annotations

from tests.delivery.conftest import jatim, polda, receiver, settings, village

__all__ = ["jatim", "polda", "receiver", "settings", "village"]
