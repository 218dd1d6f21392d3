"""``filedrop``: each envelope written into a directory, for systems that only read folders
(SFTP-synchronised, air-gapped). ``<id>.json`` is the envelope; ``<id>.json.sig`` its
detached Ed25519 signature by the hub's envelope key. Both are written under a temporary
name, flushed and renamed, signature first: a reader never sees a half-written file, nor an
envelope without its signature. Directories are relative to ``EXCHANGE_FILEDROP_ROOT``."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import (
    ConfigRefused,
    ConnectorContext,
    Delivered,
    Envelope,
    PermanentFailure,
    RetryableFailure,
)
from exchange.crypto import b64url


class FiledropConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: str = Field(
        min_length=1,
        max_length=200,
        description="A folder under the operator's filedrop root, e.g. `polda-banten/inbound`.",
    )

    @field_validator("directory")
    @classmethod
    def _relative(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or "\\" in value:
            raise ValueError("must be a relative path without '..'")
        return value


def write_atomically(path: Path, content: bytes) -> None:
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(draft, path)


class FiledropConnector:
    name: ClassVar[str] = "filedrop"
    config_model: ClassVar[type[BaseModel]] = FiledropConfig

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def _target(self, config: FiledropConfig) -> Path:
        root = self.context.filedrop_root
        if root is None:
            raise ConfigRefused("this hub has no filedrop root (EXCHANGE_FILEDROP_ROOT)")
        target = (root / config.directory).resolve()
        if not target.is_relative_to(root.resolve()):
            raise ConfigRefused("the directory leaves the filedrop root")
        return target

    def check(self, config: FiledropConfig) -> None:
        self._target(config)

    def deliver(self, envelope: Envelope, config: FiledropConfig) -> Delivered:
        try:
            target = self._target(config)
        except ConfigRefused as refused:
            raise PermanentFailure(str(refused)) from None
        signature = {
            "alg": "EdDSA",
            "kid": self.context.signing_key_id,
            "sig": b64url(self.context.signing_key.sign(envelope.body)),
        }
        try:
            target.mkdir(mode=0o750, parents=True, exist_ok=True)
            write_atomically(target / f"{envelope.id}.json.sig", json.dumps(signature).encode())
            write_atomically(target / f"{envelope.id}.json", envelope.body)
        except OSError as error:
            raise RetryableFailure(f"cannot write: {error.strerror}") from None
        return Delivered(detail=f"written to {config.directory}")
