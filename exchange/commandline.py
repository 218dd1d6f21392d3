"""What every ``exchange`` command shares: settings, one way to report errors, and the
``--json`` convention (exactly one JSON document on stdout, errors included)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from exchange.errors import ExchangeError, translate_model_error
from exchange.hub import Hub
from exchange.i18n import Locale, negotiate
from exchange.logs import configure_logging
from exchange.settings import Settings

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _cli_locale() -> Locale:
    """The operator's language from the POSIX locale variables (id_ID.UTF-8 -> id)."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return negotiate(value.split(".", 1)[0].replace("_", "-"))
    return "en"


def emit(document: Any, *, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))
    else:
        human()


@contextmanager
def reporting(as_json: bool) -> Iterator[None]:
    """Show the hub's errors as their message (or as a JSON error document), exit 1."""
    try:
        yield
    except ValidationError as exc:
        fail(translate_model_error(exc), as_json)
    except ExchangeError as exc:
        fail(exc, as_json)


def fail(error: ExchangeError, as_json: bool) -> None:
    locale = _cli_locale()
    body = error.body(locale)
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        typer.echo(f"error: {body['error']['message']}", err=True)
        for detail in body["error"]["details"]:
            typer.echo(f"  {detail['pointer'] or '/'}: {detail['message']}", err=True)
    raise typer.Exit(1)


def load_settings() -> Settings:
    # Whatever the hub writes (the SQLite file and its journal, keys) concerns vulnerable
    # people or is a secret: readable by the hub's own user only.
    os.umask(0o077)
    settings = Settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return settings


@contextmanager
def running_hub(settings: Settings) -> Iterator[Hub]:
    hub = Hub.start(settings)
    try:
        yield hub
    finally:
        hub.close()


@contextmanager
def hub_session(settings: Settings) -> Iterator[Session]:
    with running_hub(settings) as hub, hub.session() as session:
        yield session


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
