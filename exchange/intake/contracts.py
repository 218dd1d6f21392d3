"""Request and response shapes of the intake domain."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class PluginOut(BaseModel):
    """One installed plugin."""

    name: str
    kind: Literal["connector", "intake"]
    version: str
    config_schema: dict[str, Any]
