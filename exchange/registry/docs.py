"""``docs/schemas.md``, written from the schemas themselves so that it cannot drift from
them (a test compares the two)."""

from __future__ import annotations

import json
from typing import Any

from exchange.registry.service import ReportType, SchemaRegistry

DEFINITIONS = "https://schemas.exchange.example/common/definitions.json"
HEADER = """# Report schemas

The shared report types, generated from `schemas/` by `exchange schemas doc`; do not edit
by hand. Each type is a JSON Schema (draft 2020-12) with its `$id`; the definitions every
type shares live in `schemas/common/definitions.json`. Field descriptions are given in
English and Indonesian; the vocabulary of victims, recruitment, control, exploitation,
perpetrator roles and case status is borrowed from the Human Trafficking Case Data Standard
(HTCDS).

Every field that can describe a person carries `x-sensitivity`: `public`, `operational`,
`identifying` (name, NIK, passport, phone, exact birth date, free text) or `special`
(children, health, victim status: UU PDP "specific" data). Each type also says who may
submit it (`x-submitters`, by agency kind), its default TLP 2.0 marking (`x-default-tlp`),
where its routing keys are (`x-routing`: `region` lists every region a report concerns,
the office, the person's home, the departure point), which fields hold region codes and NIKs
(`x-region-codes`, `x-niks`), which name agencies the report is meant for (`x-recipients`),
which hold times that cannot be in the future (`x-not-future`), which records the
person's consent to sharing (`x-consent`) and what statistics count (`x-statistics`: the
`place` a report is counted at, its `destination` country, the number of `people` at risk and
the `persons` whose age band and gender are tallied; docs/early-warning.md): all JSON
pointers, `*` for every array item.
Fields with `x-link` (NIK, passport, a recruiter's phone, a placement agency's licence) are
linked across reports by keyed hash. Every enum value has an English and an Indonesian
label (`x-labels`); fields with a pattern say in words what they expect (`x-expected`),
and that is what an error message quotes. Telephone numbers are accepted as typed and
stored in E.164 form.

A submission is `POST /v1/reports` with `{"type", "version"?, "tlp"?, "payload", "refs"?,
"recipients"?, "allow_no_recipient"?}`; without `version` the latest is used. The payload is
what the tables below describe (the latest version of each type; every earlier version is
still accepted, and each version accepts every payload the one before it accepted).
"""


def _severity_guide(registry: SchemaRegistry) -> str:
    """When to choose each severity level, from the shared definition's ``x-guide``."""
    severity = registry.resources[DEFINITIONS]["$defs"]["severity"]
    rows = [
        f"| `{level}` | {severity['x-labels'][level]['en']} / {severity['x-labels'][level]['id']} "
        f"| {guide['en']} | {guide['id']} |"
        for level, guide in severity["x-guide"].items()
    ]
    return (
        "\n## Severity: which level to choose\n\n"
        "| level | label | when | kapan |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _describe(node: dict[str, Any]) -> tuple[str, str]:
    return str(node.get("description", "")), str(node.get("x-description-id", ""))


def _kind(node: dict[str, Any]) -> str:
    if "enum" in node:
        labels = node.get("x-labels", {})
        return "one of " + ", ".join(
            f"`{v}` ({labels[v]['id']} / {labels[v]['en']})" if v in labels else f"`{v}`"
            for v in node["enum"]
        )
    if "x-expected" in node:
        return f"{node.get('type', '')}: {node['x-expected']['en']} / {node['x-expected']['id']}"
    kind = node.get("type", "")
    kind = "/".join(kind) if isinstance(kind, list) else str(kind)
    if "format" in node:
        kind += f" ({node['format']})"
    if "pattern" in node:
        kind += f" `{node['pattern']}`"
    return kind


def _routing(report_type: ReportType) -> str:
    return "; ".join(
        f"{key} " + ", ".join(f"`{path}`" for path in paths)
        for key, paths in report_type.routing.items()
    )


def markdown(registry: SchemaRegistry) -> str:
    parts = [HEADER, _severity_guide(registry)]
    for report_type in registry.latest():
        schema = report_type.schema
        title_en, _, title_id = str(schema.get("description", "")).partition(" / ")
        parts.append(f"\n## `{report_type.name}` — {title_en}\n")
        parts.append(f"*{title_id}*\n")
        parts.append(
            f"- `$id`: `{report_type.uri}`\n"
            f"- submitted by: {', '.join(sorted(report_type.submitters))}\n"
            f"- default TLP: {report_type.default_tlp}\n"
            f"- routing: {_routing(report_type)}\n"
        )
        parts.append(
            "| field | required | type | sensitivity | description | keterangan |\n"
            "|---|---|---|---|---|---|"
        )
        for pointer, node, required in registry.fields(report_type):
            english, indonesian = _describe(node)
            parts.append(
                f"| `{pointer}` | {'yes' if required else ''} | {_kind(node)} | "
                f"{node.get('x-sensitivity', '')} | {english} | {indonesian} |"
            )
        example = next((path for path, valid in report_type.examples() if valid), None)
        if example is not None:
            document = json.loads(example.read_text(encoding="utf-8"))
            parts.append(f"\nExample (`examples/valid/{example.name}`):\n")
            parts.append("```json\n" + json.dumps(document, indent=2, ensure_ascii=False) + "\n```")
    return "\n".join(parts).rstrip() + "\n"
