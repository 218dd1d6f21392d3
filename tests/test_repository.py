"""The repository stands alone: the product and its tests need nothing outside a clone of
it, and each copied data set keeps its licence beside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Where the data came from, on the machine that built this repository: never needed by it.
OUTSIDE = ("../" + "shared", "/" + "work/")
# Data sets copied in, each with the licence it came under.
SHIPPED = {
    "exchange/regions/data/wilayah.csv": "exchange/regions/data/wilayah.LICENSE",
    "exchange/regions/data/population.csv": "exchange/regions/data/wilayah.LICENSE",
    "exchange/regions/data/banten-boundaries.geojson": "exchange/regions/data/boundaries.LICENSE",
    "tests/audit/testdata/rfc9162/inclusion": "tests/audit/testdata/rfc9162/LICENSE",
    "tests/audit/testdata/rfc9162/consistency": "tests/audit/testdata/rfc9162/LICENSE",
}


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [REPO / name.decode() for name in listed if name]


def test_no_file_reaches_outside_the_repository() -> None:
    outside = []
    for path in tracked_files():
        if path.suffix in {".png", ".geojson", ".csv"} or not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace")
        if any(marker in text for marker in OUTSIDE):
            outside.append(str(path.relative_to(REPO)))
    assert outside == [], f"files that refer outside the repository: {outside}"


def test_no_build_artefact_is_tracked() -> None:
    """Dependencies come from the package index at install time; a wheel or an archive in
    the repository is a copy nobody updates (one was committed by mistake once)."""
    artefacts = {".whl", ".egg", ".tar.gz", ".zip", ".pyc", ".so"}
    tracked = [str(path.relative_to(REPO)) for path in tracked_files()]
    assert [name for name in tracked if any(name.endswith(a) for a in artefacts)] == []


def test_every_shipped_data_set_is_tracked_with_its_licence() -> None:
    tracked = {str(path.relative_to(REPO)) for path in tracked_files()}
    for data, licence in SHIPPED.items():
        assert any(name == data or name.startswith(data + "/") for name in tracked), data
        assert licence in tracked, licence
        assert (
            "Permission is hereby granted" in (REPO / licence).read_text()
            or "Apache License" in (REPO / licence).read_text()
        )
