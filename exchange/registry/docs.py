"""``docs/schemas.md``, written from the schemas themselves so that it cannot drift from
them (a test compares the two)."""

from __future__ import annotations

import json
from typing import Any

from exchange.registry.service import ReportType, SchemaRegistry

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
where its routing keys are (`x-routing`), and which fields hold region codes and NIKs
(`x-region-codes`, `x-niks`: JSON pointers, `*` for every array item).

A submission is `POST /v1/reports` with `{"type", "version"?, "tlp"?, "payload", "refs"?}`;
the payload is what the tables below describe.
"""


def _describe(node: dict[str, Any]) -> tuple[str, str]:
    return str(node.get("description", "")), str(node.get("x-description-id", ""))


def _kind(node: dict[str, Any]) -> str:
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
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
    parts = [HEADER]
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
