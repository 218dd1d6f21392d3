"""``filedrop``: each envelope written into a directory, for systems that only read folders
(SFTP-synchronised, air-gapped). ``<id>.json`` is the envelope; ``<id>.json.sig`` its
detached Ed25519 signature by the hub's envelope key.

Each agency has its own folder under ``EXCHANGE_FILEDROP_ROOT``, named by the hub after the
agency: a subscription's ``directory`` is relative to it, so one agency can never have
reports dropped into another's folder.

The folders are written to by the hub and read (often writable too) by the recipient, so
everything in them is treated as hostile: the path is walked one component at a time from the
root with ``O_NOFOLLOW`` and each step opened relative to its parent's descriptor, so a
planted link anywhere on the way is refused, never followed; each file is first written under
a fresh random name created exclusively (``O_CREAT|O_EXCL|O_NOFOLLOW``), flushed, then renamed
into place within that directory (signature first: a reader never sees a half-written file
nor an envelope without its signature), and the name is checked afterwards to hold the very
file written."""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterator
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

FOLDER_MODE = 0o750
FILE_MODE = 0o640


class FiledropConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: str = Field(
        min_length=1,
        max_length=200,
        description="A folder inside the agency's own folder under the operator's filedrop "
        "root, e.g. `inbound`.",
    )

    @field_validator("directory")
    @classmethod
    def _relative(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or "\\" in value or "\0" in value:
            raise ValueError("must be a relative path without '..'")
        return value


class UnsafePath(Exception):
    """Raised when a component of the drop path is a link or not a folder."""


@contextlib.contextmanager
def opened_folder(root: Path, parts: tuple[str, ...]) -> Iterator[int]:
    """A descriptor of ``root/parts...``, each part created if missing and opened relative to
    its parent without following links. The root is the operator's and trusted."""
    root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, FOLDER_MODE, dir_fd=descriptor)
            try:
                child = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor
                )
            except OSError as error:
                if error.errno in {errno.ELOOP, errno.ENOTDIR}:  # a link, or a file
                    raise UnsafePath(part) from None
                raise
            os.close(descriptor)
            descriptor = child
        yield descriptor
    finally:
        os.close(descriptor)


def write_atomically(folder: int, name: str, content: bytes) -> None:
    """Write ``name`` in the folder open as ``folder``: under a fresh, exclusively created
    temporary name first, then renamed over ``name`` (replacing a link there, never
    following it), then checked to be the file written."""
    draft = f".{name}.{secrets.token_hex(16)}.tmp"
    fd = os.open(
        draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE, dir_fd=folder
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
            written = os.fstat(handle.fileno())
        os.replace(draft, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(draft, dir_fd=folder)
        raise
    placed = os.stat(name, dir_fd=folder, follow_symlinks=False)
    if (placed.st_dev, placed.st_ino) != (written.st_dev, written.st_ino):
        raise UnsafePath(name)
    os.fsync(folder)  # the rename itself survives a crash


class FiledropConnector:
    name: ClassVar[str] = "filedrop"
    config_model: ClassVar[type[BaseModel]] = FiledropConfig

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def _location(self, config: FiledropConfig) -> tuple[Path, tuple[str, ...]]:
        root = self.context.filedrop_root
        if root is None:
            raise ConfigRefused("this hub has no filedrop root (EXCHANGE_FILEDROP_ROOT)")
        if not self.context.recipient:
            raise ConfigRefused("a file drop needs the agency it delivers to")
        parts = tuple(p for p in PurePosixPath(config.directory).parts if p not in {"", "."})
        return root, (self.context.recipient, *parts)

    def check(self, config: FiledropConfig) -> None:
        self._location(config)

    def deliver(self, envelope: Envelope, config: FiledropConfig) -> Delivered:
        try:
            root, parts = self._location(config)
        except ConfigRefused as refused:
            raise PermanentFailure(str(refused)) from None
        signature = {
            "alg": "EdDSA",
            "kid": self.context.signing_key_id,
            "sig": base64.urlsafe_b64encode(self.context.signing_key.sign(envelope.body))
            .rstrip(b"=")
            .decode(),
        }
        try:
            with opened_folder(root, parts) as folder:
                write_atomically(folder, f"{envelope.id}.json.sig", json.dumps(signature).encode())
                write_atomically(folder, f"{envelope.id}.json", envelope.body)
        except UnsafePath:
            raise PermanentFailure(
                f"{config.directory} holds a link or a file where a folder or envelope should "
                "be; nothing was written through it"
            ) from None
        except OSError as error:
            raise RetryableFailure(f"cannot write: {error.strerror}") from None
        return Delivered(detail=f"written to {config.directory}")
