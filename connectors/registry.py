"""Finding plugins: connectors (deliver reports out) under the ``exchange.connectors``
entry-point group and intakes (take messages in) under ``exchange.intakes``; the built-ins
register there too, in the hub's own ``pyproject.toml``."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from connectors.base import ConnectorFactory, IntakeFactory

ENTRY_POINT_GROUP = "exchange.connectors"
INTAKE_GROUP = "exchange.intakes"
logger = logging.getLogger(__name__)


class UnknownConnector(LookupError):
    """Raised when no installed connector (or intake) has the requested name."""


@dataclass(frozen=True)
class Plugin:
    name: str
    factory: Any
    version: str  # of the distribution that provides it


@functools.cache
def plugins(group: str) -> dict[str, Plugin]:
    """The plugins of one entry-point group by name, loaded once per process. A plugin that
    fails to import is logged and left out rather than taking the hub down with it."""
    found: dict[str, Plugin] = {}
    for point in entry_points(group=group):
        try:
            loaded = point.load()
        except Exception:
            logger.exception("plugin failed to load", extra={"entry_point": point.name})
            continue
        if getattr(loaded, "name", None) != point.name:
            logger.error(
                "plugin's name differs from its entry point; left out",
                extra={"entry_point": point.name},
            )
            continue
        version = point.dist.version if point.dist is not None else "unknown"
        found[point.name] = Plugin(point.name, loaded, version)
    return found


def installed() -> dict[str, ConnectorFactory]:
    return {name: plugin.factory for name, plugin in plugins(ENTRY_POINT_GROUP).items()}


def factory(name: str) -> ConnectorFactory:
    try:
        return installed()[name]
    except KeyError:
        raise UnknownConnector(name) from None


def intakes() -> dict[str, IntakeFactory]:
    return {name: plugin.factory for name, plugin in plugins(INTAKE_GROUP).items()}


def intake_factory(name: str) -> IntakeFactory:
    try:
        return intakes()[name]
    except KeyError:
        raise UnknownConnector(name) from None
