"""Backward compatibility between two versions of a report type: every payload valid under
the old version must stay valid under the new one. Each finding names the field (a JSON
pointer, ``*`` for array items) and the rule it breaks.

Our own walk: the rules are this project's (agencies keep sending the old version while they
upgrade), and the schema-diff tools that exist target OpenAPI or other drafts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # referencing exports the class only from its core module
    from referencing._core import Resolver

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _dereferenced(node: Any, resolver: Resolver[Any] | None) -> tuple[Any, Resolver[Any] | None]:
    """The definition a ``$ref`` names (its siblings' constraints are not merged: the
    schemas keep only annotations beside a ``$ref``)."""
    seen = 0
    while resolver is not None and isinstance(node, dict) and "$ref" in node and seen < 32:
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
        seen += 1
    return node, resolver


def incompatibilities(
    old: Any,
    new: Any,
    path: str = "",
    *,
    old_resolver: Resolver[Any] | None = None,
    new_resolver: Resolver[Any] | None = None,
) -> list[str]:
    """What breaks between two schemas. With resolvers, ``$ref``s are followed and the
    definitions compared, so a new version may point a field at another definition that
    accepts at least as much; without, any change of ``$ref`` counts as a break."""
    old, old_resolver = _dereferenced(old, old_resolver)
    new, new_resolver = _dereferenced(new, new_resolver)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    where = path or "/"

    def deeper(old_node: Any, new_node: Any, at: str) -> list[str]:
        return incompatibilities(
            old_node, new_node, at, old_resolver=old_resolver, new_resolver=new_resolver
        )

    found: list[str] = []
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        found.append(f"{path}/{name}: adds a required field")
    old_types, new_types = _types(old), _types(new)
    if new_types is not None and (old_types is None or not old_types <= new_types):
        before = sorted(old_types) if old_types else "any"
        found.append(f"{where}: narrows the type from {before} to {sorted(new_types)}")
    if "enum" in new:
        if "enum" not in old:
            found.append(f"{where}: restricts the values to an enum")
        else:
            for value in old["enum"]:
                if value not in new["enum"]:
                    found.append(f"{where}: removes the enum value {value!r}")
    for keyword in ("pattern", "format", "const"):
        if keyword in new and new.get(keyword) != old.get(keyword):
            found.append(f"{where}: changes {keyword} (tightens what is accepted)")
    for keyword in _LOWER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
            found.append(f"{where}: tightens {keyword} to {new[keyword]}")
    for keyword in _UPPER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
            found.append(f"{where}: tightens {keyword} to {new[keyword]}")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        found.append(f"{where}: forbids additional properties")
    if "$ref" in new and new.get("$ref") != old.get("$ref"):
        found.append(f"{where}: changes the referenced definition to {new['$ref']}")
    old_properties = old.get("properties", {})
    for name, new_property in new.get("properties", {}).items():
        if name in old_properties:
            found.extend(deeper(old_properties[name], new_property, f"{path}/{name}"))
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        found.extend(deeper(old["items"], new["items"], f"{path}/*"))
    return found
