"""The shapes of the audit log's endpoints that take a body."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from exchange.contracts import IJSON_INTEGER_LIMIT


class CosignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: Annotated[int, Field(ge=0, le=IJSON_INTEGER_LIMIT)]
    signature: Annotated[str, Field(min_length=1, max_length=500)]
