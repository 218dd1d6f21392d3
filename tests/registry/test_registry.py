"""The shared schemas and the registry: examples, the two validators agreeing, the
compatibility rules, start-up checks and the HTTP surface."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.agencies.models import Scope
from exchange.errors import ConfigurationError
from exchange.hub import Hub
from exchange.registry.compat import incompatibilities
from exchange.registry.formats import is_nik, nik_birth_date
from exchange.registry.service import (
    SchemaRegistry,
    checked_registry,
    default_schemas_dir,
    values_at,
)
from exchange.settings import Settings
from tests.conftest import bearer, issue_key

REGISTRY = SchemaRegistry(default_schemas_dir())
EXAMPLES = [
    pytest.param(report_type, path, valid, id=f"{report_type.name}/{path.parent.name}/{path.stem}")
    for report_type in REGISTRY.latest()
    for path, valid in report_type.examples()
]
REQUIRED_TYPES = {
    "village-early-warning",
    "passport-application-flag",
    "departure-interception",
    "victim-referral",
    "case-update",
    "recruitment-actor-alert",
}


def test_the_shipped_schemas_have_no_problems() -> None:
    assert set(REGISTRY.names()) == REQUIRED_TYPES
    assert REGISTRY.problems() == []


def test_every_type_ships_valid_and_invalid_examples() -> None:
    for report_type in REGISTRY.latest():
        labels = {valid for _, valid in report_type.examples()}
        assert labels == {True, False}, report_type.name


@pytest.mark.parametrize(("report_type", "path", "valid"), EXAMPLES)
def test_example_is_labelled_right_by_both_validators(
    report_type: Any, path: Path, valid: bool
) -> None:
    payload = json.loads(path.read_text())
    assert (not report_type.violations(payload)) is valid
    assert REGISTRY.reference_validator(report_type).is_valid(payload) is valid


def test_every_personal_field_carries_a_sensitivity() -> None:
    person = json.loads((default_schemas_dir() / "common" / "definitions.json").read_text())
    definitions = person["$defs"]
    for name, field in definitions["person"]["properties"].items():
        target = field
        if "$ref" in field:
            target = definitions[field["$ref"].rsplit("/", 1)[1]]
        assert target.get("x-sensitivity") in {
            "public",
            "operational",
            "identifying",
            "special",
        }, name
    assert definitions["nik"]["x-sensitivity"] == "identifying"
    assert definitions["person"]["properties"]["is_minor"]["x-sensitivity"] == "special"


# --- the two validators agree ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 20_000)
    | st.text(max_size=20)
    | st.sampled_from(
        ["36.03.11.2009", "3603114505950001", "2026-11-20", "KH", "high", "+62812345678"]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(paths_of(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(paths_of(value, (*prefix, index)))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[Any, Any]:
    report_type, path, _ = draw(st.sampled_from([p.values for p in EXAMPLES]))
    document = json.loads(path.read_text())
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(paths_of(document)))
        if not target:
            continue
        parent = document
        for part in target[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[target[-1]]
        else:
            parent[target[-1]] = draw(JSON_VALUES)
    return report_type, document


@settings(max_examples=400, deadline=None)
@given(mutated_examples())
def test_fast_and_reference_validators_agree(case: tuple[Any, Any]) -> None:
    report_type, document = case
    fast = report_type.violations(document)
    reference = list(REGISTRY.reference_validator(report_type).iter_errors(document))
    assert (not fast) == (not reference)
    fast_pointers = {v.pointer for v in fast}
    reference_pointers = {"".join(f"/{p}" for p in e.absolute_path) for e in reference}
    assert fast_pointers == reference_pointers


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nik", "valid"),
    [
        ("3603111208900002", True),  # a man born 12 August 1990
        ("3603114505950001", True),  # a woman born 5 May 1995 (day + 40)
        ("3603112902000001", True),  # 29 February 2000
        ("3603113213950001", False),  # day 32
        ("3603111213950001", False),  # month 13
        ("3603117202010001", False),  # 32 February (women's day 72 - 40)
        ("3603111208900000", False),  # serial 0000
        ("0003111208900001", False),  # no province
    ],
)
def test_nik_format(nik: str, valid: bool) -> None:
    assert is_nik(nik) is valid


def test_nik_birth_date_decodes_women_and_century() -> None:
    assert str(nik_birth_date("3603114505950001")) == "1995-05-05"
    assert str(nik_birth_date("3603111208100002")) == "2010-08-12"


def test_values_at_expands_array_wildcards() -> None:
    payload = {"people": [{"nik": "a"}, {"name": "x"}, {"nik": "b"}]}
    assert list(values_at(payload, "/people/*/nik")) == [
        ("/people/0/nik", "a"),
        ("/people/2/nik", "b"),
    ]


# --- compatibility ---------------------------------------------------------------------------

OLD = {
    "type": "object",
    "required": ["a"],
    "properties": {
        "a": {"type": "string", "enum": ["x", "y"]},
        "b": {"type": ["string", "null"], "maxLength": 10},
        "c": {"type": "integer", "minimum": 0},
        "d": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    },
}


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (lambda s: s["required"].append("b"), "/b: adds a required field"),
        (lambda s: s["properties"]["b"].update(type="string"), "/b: narrows the type"),
        (lambda s: s["properties"]["a"]["enum"].remove("y"), "/a: removes the enum value 'y'"),
        (lambda s: s["properties"]["b"].update(maxLength=5), "/b: tightens maxLength to 5"),
        (lambda s: s["properties"]["c"].update(minimum=1), "/c: tightens minimum to 1"),
        (lambda s: s["properties"]["d"].update(maxItems=2), "/d: tightens maxItems to 2"),
        (lambda s: s["properties"]["d"]["items"].update(pattern="^z"), "/d/*: changes pattern"),
        (lambda s: s.update(additionalProperties=False), "/: forbids additional properties"),
    ],
)
def test_each_incompatible_change_is_named(change: Any, finding: str) -> None:
    new = copy.deepcopy(OLD)
    change(new)
    found = incompatibilities(OLD, new)
    assert any(f.startswith(finding) for f in found), found


def test_compatible_changes_pass() -> None:
    new = copy.deepcopy(OLD)
    new["properties"]["a"]["enum"].append("z")  # a new value
    new["properties"]["b"]["maxLength"] = 20  # a looser bound
    new["properties"]["e"] = {"type": "string"}  # a new optional field
    new["properties"]["c"]["type"] = ["integer", "null"]  # a wider type
    assert incompatibilities(OLD, new) == []


def copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(default_schemas_dir(), target)
    return target


def test_an_incompatible_new_version_is_reported_by_the_check(tmp_path: Path) -> None:
    directory = copy_schemas(tmp_path)
    schema = json.loads((directory / "case-update" / "1.json").read_text())
    schema["$id"] = schema["$id"].replace("/1.json", "/2.json")
    schema["required"].append("perpetrators")
    (directory / "case-update" / "2.json").write_text(json.dumps(schema))
    problems = SchemaRegistry(directory).problems()
    assert problems == [
        "case-update/2 is incompatible with 1: /perpetrators: adds a required field"
    ]


@pytest.mark.parametrize(
    ("breakage", "finding"),
    [
        (
            lambda s: s["properties"].update(bad={"$ref": "../common/nowhere.json"}),
            "does not resolve",
        ),
        (lambda s: s.update(type="no-such-type"), "not a valid 2020-12 schema"),
        (lambda s: s.update({"x-submitters": ["army"]}), "x-submitters"),
        (lambda s: s.update({"x-niks": ["/victim/nik_number"]}), "names no field"),
        (
            lambda s: s["properties"]["needs"].pop("x-description-id"),
            "/needs lacks x-description-id",
        ),
    ],
)
def test_broken_schemas_are_reported(tmp_path: Path, breakage: Any, finding: str) -> None:
    directory = copy_schemas(tmp_path)
    path = directory / "victim-referral" / "1.json"
    schema = json.loads(path.read_text())
    breakage(schema)
    path.write_text(json.dumps(schema))
    problems = SchemaRegistry(directory).problems()
    assert any(finding in p for p in problems), problems


def test_a_mislabelled_example_is_reported(tmp_path: Path) -> None:
    directory = copy_schemas(tmp_path)
    source = directory / "case-update" / "examples" / "invalid" / "bad-reference.json"
    source.rename(directory / "case-update" / "examples" / "valid" / "bad-reference.json")
    assert SchemaRegistry(directory).problems() == [
        f"case-update/{version} example bad-reference.json: labelled valid" for version in (1, 2)
    ]


def test_the_hub_refuses_to_start_on_broken_schemas(settings: Settings, tmp_path: Path) -> None:
    directory = copy_schemas(tmp_path)
    (directory / "case-update" / "examples" / "invalid" / "bad-reference.json").rename(
        directory / "case-update" / "examples" / "valid" / "bad-reference.json"
    )
    checked_registry.cache_clear()
    with pytest.raises(ConfigurationError, match="labelled valid"):
        Hub.start(settings.model_copy(update={"schemas_dir": directory}))


def test_docs_schemas_md_is_generated_from_the_schemas() -> None:
    from exchange.registry.docs import markdown

    written = (Path(__file__).resolve().parents[2] / "docs" / "schemas.md").read_text()
    assert written == markdown(REGISTRY), "run: exchange schemas doc > docs/schemas.md"


# --- over HTTP -------------------------------------------------------------------------------


def test_schemas_are_listed_and_served(client: TestClient, hub: Hub) -> None:
    assert client.get("/v1/schemas").status_code == 401
    token = bearer(issue_key(hub, "polda-banten", [Scope.receive]))
    listed = {s["type"]: s for s in client.get("/v1/schemas", headers=token).json()}
    assert set(listed) == REQUIRED_TYPES
    assert listed["victim-referral"]["default_tlp"] == "RED"
    assert "village" in listed["village-early-warning"]["submitters"]
    served = client.get("/v1/schemas/village-early-warning/2", headers=token)
    assert served.headers["content-type"] == "application/schema+json"
    assert served.json()["$id"] == listed["village-early-warning"]["uri"]
    missing = client.get("/v1/schemas/village-early-warning/9", headers=token)
    assert missing.status_code == 404
    assert "known versions: 1, 2" in missing.json()["error"]["message"]


def test_each_schema_version_is_announced_once_in_the_audit_log(settings: Settings) -> None:
    from sqlmodel import select

    from exchange.app import create_app
    from exchange.audit.models import AuditEvent

    for _ in range(2):  # two starts, one announcement
        app = create_app(settings)
        with TestClient(app):
            pass
    hub = Hub.start(settings)
    try:
        with hub.session() as session:
            events = session.exec(
                select(AuditEvent).where(AuditEvent.action == "schema.published")
            ).all()
    finally:
        hub.close()
    subjects = sorted(e.subject for e in events)
    assert subjects == sorted(f"schema:{name}/{v}" for name in REQUIRED_TYPES for v in (1, 2))
    details = json.loads(events[0].canonical)["details"]
    assert details["uri"].startswith("https://schemas.exchange.example/")
    assert len(details["sha256"]) == 64
