"""The documentation stays true to the code where a test can tell."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(EXCHANGE_[A-Z_]+)`", readme))
    expected = {f"EXCHANGE_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "add these to the README's configuration table"
    assert documented - expected == set(), "the README documents settings that do not exist"


def test_architecture_names_only_files_that_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:exchange|workers|connectors)/[\w/]+\.py)`", text))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []
