"""Finding connectors: every class registered under the ``exchange.connectors`` entry-point
group (the built-ins register there too, in the hub's own ``pyproject.toml``)."""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points

from connectors.base import ConnectorFactory

ENTRY_POINT_GROUP = "exchange.connectors"
logger = logging.getLogger(__name__)


class UnknownConnector(LookupError):
    """Raised when no installed connector has the requested name."""


@functools.cache
def installed() -> dict[str, ConnectorFactory]:
    """Connector classes by name, loaded once per process. A plugin that fails to import is
    logged and left out rather than taking the hub down with it."""
    found: dict[str, ConnectorFactory] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory: ConnectorFactory = point.load()
        except Exception:
            logger.exception("connector plugin failed to load", extra={"entry_point": point.name})
            continue
        if getattr(factory, "name", None) != point.name:
            logger.error(
                "connector plugin's name differs from its entry point; left out",
                extra={"entry_point": point.name},
            )
            continue
        found[point.name] = factory
    return found


def factory(name: str) -> ConnectorFactory:
    try:
        return installed()[name]
    except KeyError:
        raise UnknownConnector(name) from None
