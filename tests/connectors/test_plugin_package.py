"""A connector shipped as its own package (docs/examples/exchange-connector-ntfy) is
installed with pip, passes the contract kit, and the hub delivers through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.registry import installed, plugins
from exchange.agencies.models import AgencyKind, Scope
from exchange.app import create_app
from exchange.hub import Hub
from exchange.settings import Settings
from tests.conftest import bearer, issue_key
from tests.delivery.conftest import fast_settings, submit, subscribe
from tests.servers import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "exchange-connector-ntfy"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed (built into a wheel by pip) into a folder of its own."""
    site = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-source") / "pkg"
    shutil.copytree(EXAMPLE, source)  # pip builds in place; keep the source tree clean
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    assert (site / "exchange_connector_ntfy" / "__init__.py").exists()
    return site


@pytest.fixture
def with_plugin(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(plugin_site))
    plugins.cache_clear()
    yield
    plugins.cache_clear()


def test_the_plugin_passes_the_contract_kit(plugin_site: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), *sys.path])},
        capture_output=True,
        timeout=300,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert "7 passed" in output


class Topic:
    """An ntfy-style topic server on loopback keeping each notice's headers and text."""

    def __init__(self) -> None:
        self.notices: list[tuple[dict[str, str], str]] = []
        topic = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                text = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                topic.notices.append(({k.lower(): v for k, v in self.headers.items()}, text))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def test_the_hub_delivers_through_the_plugin(
    with_plugin: None, database_url: str, tmp_path: Path
) -> None:
    assert "ntfy" in installed()
    settings: Settings = fast_settings(database_url, tmp_path)
    topic = Topic()
    try:
        with TestClient(create_app(settings)) as client:
            hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
            polda = bearer(issue_key(hub, "polda-banten", [Scope.receive]))
            village = bearer(issue_key(hub, "pimpasa", [Scope.submit], kind=AgencyKind.village))
            subscribe(client, polda, connector="ntfy", config={"url": f"{topic.base}/tppo"})
            submit(client, village)
            wait_until(lambda: len(topic.notices) == 1, what="the notice", deadline_s=20)
    finally:
        topic.server.shutdown()
    (headers, text) = topic.notices[0]
    assert headers["title"] == "high exchange.report.village-early-warning.v2"
    assert "36.03.11.2009" in text
