"""The schema registry: every report type and version under the schemas directory, checked
at start-up and compiled once.

Validation on the hot path uses jsonschema-rs; python-jsonschema is kept as the reference
implementation, run by ``exchange schemas check`` and by the differential tests, which
require both to agree on every example and on generated documents.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import referencing
import referencing.exceptions
from jsonschema import Draft202012Validator, FormatChecker

from exchange.agencies.models import AgencyKind, Sensitivity
from exchange.errors import ConfigurationError, InvalidInput, json_pointer
from exchange.i18n import CATALOGUE, Localised, Text, t
from exchange.registry.compat import incompatibilities
from exchange.registry.formats import FORMATS, e164

TLP_MARKINGS = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")
SENSITIVITIES = frozenset(s.value for s in Sensitivity)
_VERSION_FILE = re.compile(r"^([1-9][0-9]*)\.json$")


def default_schemas_dir() -> Path:
    """The schemas shipped inside the wheel, else the source tree's ``schemas/``."""
    bundled = Path(str(resources.files("exchange"))) / "_schemas"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True)
class Violation:
    """One way a payload breaks its schema: where (a JSON pointer into the payload), which
    keyword, and the values a message needs."""

    pointer: str
    keyword: str
    params: dict[str, Any]
    message: str
    schema_path: str

    def text(self) -> Text:
        key = f"schema.{self.keyword}"
        if key in CATALOGUE:
            return Text(key, {k: _shown(v) for k, v in self.params.items()})
        return Text("validation.value_error", {"reason": self.message})


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass
class ReportType:
    name: str
    version: int
    schema: dict[str, Any]
    path: Path
    validator: Any = field(repr=False)

    @property
    def uri(self) -> str:
        return str(self.schema["$id"])

    @property
    def submitters(self) -> frozenset[str]:
        return frozenset(self.schema.get("x-submitters", []))

    @property
    def default_tlp(self) -> str:
        return str(self.schema.get("x-default-tlp", "AMBER"))

    @property
    def region_code_paths(self) -> tuple[str, ...]:
        return tuple(self.schema.get("x-region-codes", []))

    @property
    def nik_paths(self) -> tuple[str, ...]:
        return tuple(self.schema.get("x-niks", []))

    @property
    def report_ref_paths(self) -> tuple[str, ...]:
        """Fields naming other reports (``x-report-refs``): like ``refs``, each must be a
        report the sender may see, and the strictest marking among them wins."""
        return tuple(self.schema.get("x-report-refs", []))

    @property
    def retention_days(self) -> int:
        """How long a report of this type is kept before ``exchange purge --expired``
        destroys its data key (``x-retention-days``)."""
        return int(self.schema["x-retention-days"])

    @property
    def routing(self) -> dict[str, tuple[str, ...]]:
        """Where routing finds each of its keys (``x-routing``): ``region`` (every region the
        report concerns: the office, the person's home village, the departure point...),
        ``severity`` and ``indicators``, each a pointer or a list of pointers."""
        found = self.schema.get("x-routing", {})
        return {
            key: (value,) if isinstance(value, str) else tuple(value)
            for key, value in found.items()
        }

    @property
    def consent_path(self) -> str | None:
        """The field saying whether the person consented to sharing their data
        (``x-consent``); when it is false, no recipient gets identifying fields (HTCDS)."""
        found = self.schema.get("x-consent")
        return str(found) if found else None

    @property
    def not_future_paths(self) -> tuple[str, ...]:
        """Fields holding when something was seen or done (``x-not-future``): a time more
        than the allowed clock skew ahead of the hub's is a mistake, refused."""
        return tuple(self.schema.get("x-not-future", []))

    @property
    def recipient_paths(self) -> tuple[str, ...]:
        """Fields naming an agency the report is meant for (``x-recipients``: a referral's
        ``receiving_agency``): the hub adds each to the report's ``recipients``."""
        return tuple(self.schema.get("x-recipients", []))

    @property
    def sms(self) -> dict[str, Any]:
        """How a text message files this type (``x-sms``): its ``keywords``, the ``fields``
        its words fill in order, the ``text`` field the rest of the message goes to, the
        fields set to when the hub ``received`` it and to the ``sender`` agency."""
        return dict(self.schema.get("x-sms", {}))

    @property
    def statistics(self) -> dict[str, Any]:
        """What statistics count of a report of this type (``x-statistics``): the ``place``
        it is counted at (the first region code found along these pointers), its
        ``destination`` country (the first found), the number of ``people`` at risk (a
        count field) and the ``persons`` whose age band and gender are tallied (and
        counted, when there is no count field). Nothing identifying is ever among them."""
        return dict(self.schema.get("x-statistics", {}))

    def examples(self) -> Iterator[tuple[Path, bool]]:
        for kind, valid in (("valid", True), ("invalid", False)):
            folder = self.path.parent / "examples" / kind
            for example in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                yield example, valid

    def violations(self, payload: Any) -> list[Violation]:
        return [
            Violation(
                pointer=json_pointer(error.instance_path),
                keyword=error.kind.name,
                params=dict(error.kind.as_dict()),
                message=error.message,
                schema_path=json_pointer(error.evaluation_path),
            )
            for error in self.validator.iter_errors(payload)
        ]


class UnknownReportType(InvalidInput):
    """Raised when a submission names a report type or version the registry does not have."""

    code = "unknown_report_type"


class SchemaRegistry:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.resources: dict[str, dict[str, Any]] = {}
        self._types: dict[str, dict[int, ReportType]] = {}
        self._compile_errors: list[str] = []
        self._classified: dict[tuple[str, int], list[tuple[str, str]]] = {}
        self._link_paths: dict[tuple[str, int], list[tuple[str, str]]] = {}
        self._field_index: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
        self._inlined: dict[tuple[str, int], dict[str, Any]] = {}
        for path in sorted(directory.glob("*/*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(document, dict) or "$id" not in document:
                raise ValueError(f"{path}: a schema needs an $id")
            self.resources[document["$id"]] = document
        try:
            rs_registry = jsonschema_rs.Registry(list(self.resources.items()))
        except ValueError as exc:  # an unresolvable $ref: nothing can be compiled
            self._compile_errors.append(f"the schemas do not compile: {exc}")
            return
        for path in sorted(directory.glob("*/*.json")):
            match = _VERSION_FILE.match(path.name)
            if path.parent.name == "common" or match is None:
                continue
            document = self.resources[json.loads(path.read_text(encoding="utf-8"))["$id"]]
            try:
                validator = jsonschema_rs.validator_for(
                    document, registry=rs_registry, formats=FORMATS, validate_formats=True
                )
            except (ValueError, jsonschema_rs.ReferencingError) as exc:
                self._compile_errors.append(f"{document['$id']}: does not compile: {exc}")
                continue
            report_type = ReportType(
                path.parent.name, int(match.group(1)), document, path, validator
            )
            self._types.setdefault(report_type.name, {})[report_type.version] = report_type

    def fields(self, report_type: ReportType) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """Every field of a type's payload, ``$ref``s resolved: its pattern
        (``/persons_at_risk/people/*/nik``), its schema and whether it is required."""
        resolver = self.reference_registry.resolver(base_uri=report_type.uri)

        def resolve(node: dict[str, Any], current: Any) -> tuple[dict[str, Any], Any]:
            while "$ref" in node:
                resolved = current.lookup(node["$ref"])
                node, current = resolved.contents, resolved.resolver
            return node, current

        def walk(
            node: dict[str, Any], current: Any, path: str
        ) -> Iterator[tuple[str, dict[str, Any], bool]]:
            required = set(node.get("required", []))
            for name, child in node.get("properties", {}).items():
                target, child_resolver = resolve(child, current)
                pointer = f"{path}/{name}"
                yield pointer, target, name in required
                if target.get("type") == "object":
                    yield from walk(target, child_resolver, pointer)
                items = target.get("items")
                if isinstance(items, dict):
                    item, item_resolver = resolve(items, child_resolver)
                    if item.get("type") == "object":
                        yield from walk(item, item_resolver, pointer + "/*")
                    elif {"enum", "pattern", "format"} & item.keys():
                        yield pointer + "/*", item, False

        yield from walk(report_type.schema, resolver, "")

    def inlined(self, report_type: ReportType) -> dict[str, Any]:
        """The type's schema with every ``$ref`` replaced by what it names (a ``$ref``'s
        sibling keywords, such as its own description, kept over the target's): what a form
        built in the browser reads, without a resolver of its own. Worked out once."""
        key = (report_type.name, report_type.version)
        if key in self._inlined:
            return self._inlined[key]
        resolver = self.reference_registry.resolver(base_uri=report_type.uri)

        def inline(node: Any, current: Any) -> Any:
            if isinstance(node, list):
                return [inline(item, current) for item in node]
            if not isinstance(node, dict):
                return node
            if "$ref" in node:
                resolved = current.lookup(node["$ref"])
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                target = inline(resolved.contents, resolved.resolver)
                return {**target, **inline(siblings, current)}
            return {key: inline(value, current) for key, value in node.items() if key != "$defs"}

        inlined: dict[str, Any] = inline(report_type.schema, resolver)
        self._inlined[key] = inlined
        return inlined

    # --- lookups -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._types)

    def versions(self, name: str) -> list[ReportType]:
        return [self._types[name][v] for v in sorted(self._types.get(name, {}))]

    def latest(self) -> list[ReportType]:
        return [self.versions(name)[-1] for name in self.names()]

    def get(self, name: str, version: int | None = None, *, pointer: str = "/type") -> ReportType:
        versions = self._types.get(name)
        if not versions:
            raise UnknownReportType.at(
                t("registry.unknown_type", type=name, known=", ".join(self.names())), pointer
            )
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            known = ", ".join(str(v) for v in sorted(versions))
            message = t("registry.unknown_version", type=name, version=version, known=known)
            raise UnknownReportType.at(message, "/version")
        return versions[version]

    # --- what protection needs to know of each type -----------------------------------------

    def classified(self, report_type: ReportType) -> list[tuple[str, str]]:
        """Every field pattern (``/persons_at_risk/people/*/nik``) with its x-sensitivity,
        shallowest first."""
        key = (report_type.name, report_type.version)
        if key not in self._classified:
            found = [(p, str(node["x-sensitivity"])) for p, node, _ in self.fields(report_type)]
            self._classified[key] = sorted(found, key=lambda item: item[0].count("/"))
        return self._classified[key]

    def link_paths(self, report_type: ReportType) -> list[tuple[str, str]]:
        """Field patterns holding a person's identifier, with its kind (``x-link``: nik,
        passport), for linking reports about the same person without the number. Worked
        out once per type: every submission asks."""
        key = (report_type.name, report_type.version)
        if key not in self._link_paths:
            self._link_paths[key] = [
                (pointer, str(node["x-link"]))
                for pointer, node, _ in self.fields(report_type)
                if "x-link" in node
            ]
        return self._link_paths[key]

    def indicator_labels(self) -> dict[str, dict[str, str]]:
        """Every indicator the current types can raise (the items of their ``x-routing``
        indicator fields), with its English and Indonesian label."""
        found: dict[str, dict[str, str]] = {}
        for report_type in self.latest():
            index = self.field_index(report_type)
            for pointer in report_type.routing.get("indicators", ()):
                labels = index.get(f"{pointer}/*", {}).get("x-labels", {})
                found.update({value: dict(label) for value, label in labels.items()})
        return dict(sorted(found.items()))

    def field_index(self, report_type: ReportType) -> dict[str, dict[str, Any]]:
        """Each field pattern of a type and its schema, ``$ref``s resolved; worked out once."""
        key = (report_type.name, report_type.version)
        if key not in self._field_index:
            self._field_index[key] = {p: node for p, node, _ in self.fields(report_type)}
        return self._field_index[key]

    def normalised(
        self, report_type: ReportType, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """The payload with every telephone number (``format: phone``) in E.164 form, so
        that one number typed two ways is stored, and linked, as one, and the pointers of
        the values changed. ``payload`` is left as it is; it must already be valid."""
        phones = [
            p for p, node in self.field_index(report_type).items() if node.get("format") == "phone"
        ]
        located = [
            (pointer, value)
            for pattern in phones
            for pointer, value in values_at(payload, pattern)
            if isinstance(value, str)
        ]
        changed = [(pointer, new) for pointer, value in located if (new := e164(value)) != value]
        if not changed:
            return payload, []
        document: dict[str, Any] = copy.deepcopy(payload)
        for pointer, new in changed:
            *parents, last = pointer.strip("/").split("/")
            node: Any = document
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            node[int(last) if isinstance(node, list) else last] = new
        return document, [pointer for pointer, _ in changed]

    def explain(self, report_type: ReportType, violation: Violation) -> Text:
        """What a violation means, in words: for a pattern or format the field's
        ``x-expected`` ("kode desa 13 digit, mis. 36.03.11.2009"), for an enum its values with
        their labels; otherwise the keyword's own message."""
        node = self.field_index(report_type).get(_as_pattern(violation.pointer), {})
        expected = node.get("x-expected")
        if violation.keyword in {"pattern", "format"} and expected:
            return Text("schema.expected", {"expected": Localised(expected)})
        labels = node.get("x-labels")
        if violation.keyword == "enum" and labels:
            listed = Localised(
                {
                    locale: ", ".join(f"{value} ({labels[value][locale]})" for value in labels)
                    for locale in ("en", "id")
                }
            )
            return Text("schema.enum_labelled", {"values": listed})
        return violation.text()

    # --- the reference implementation -------------------------------------------------------

    @functools.cached_property
    def reference_registry(self) -> referencing.Registry[Any]:
        return referencing.Registry().with_resources(
            (uri, referencing.Resource.from_contents(document))
            for uri, document in self.resources.items()
        )

    def reference_validator(self, report_type: ReportType) -> Draft202012Validator:
        checker = FormatChecker()
        for name, function in FORMATS.items():
            checker.checks(name)(function)
        return Draft202012Validator(
            report_type.schema, registry=self.reference_registry, format_checker=checker
        )

    # --- checks ----------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Everything wrong with the schemas, each naming the file and the rule."""
        found: list[str] = list(self._compile_errors)
        reference = self.reference_registry
        for uri, document in self.resources.items():
            try:
                Draft202012Validator.check_schema(document)
            except jsonschema.SchemaError as exc:
                found.append(f"{uri}: not a valid 2020-12 schema: {exc.message}")
            resolver = reference.resolver(base_uri=uri)
            for ref in _refs(document):
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable:
                    found.append(f"{uri}: $ref {ref} does not resolve")
        keywords: dict[str, str] = {}
        for report_type in self.latest():
            for word in report_type.sms.get("keywords", []):
                if keywords.setdefault(str(word), report_type.name) != report_type.name:
                    found.append(f"x-sms keyword {word} names two types")
        for name in self.names():
            versions = self.versions(name)
            for report_type in versions:
                found.extend(self._annotation_problems(report_type))
                validator = self.reference_validator(report_type)
                for example, valid in report_type.examples():
                    payload = json.loads(example.read_text(encoding="utf-8"))
                    fast_ok = not report_type.violations(payload)
                    reference_ok = validator.is_valid(payload)
                    label = f"{name}/{report_type.version} example {example.name}"
                    if fast_ok != reference_ok:
                        found.append(f"{label}: the two validators disagree")
                    elif fast_ok != valid:
                        found.append(f"{label}: labelled {'valid' if valid else 'invalid'}")
            for older, newer in itertools.pairwise(versions):
                found.extend(
                    f"{name}/{newer.version} is incompatible with {older.version}: {problem}"
                    for problem in incompatibilities(
                        older.schema,
                        newer.schema,
                        old_resolver=reference.resolver(base_uri=older.uri),
                        new_resolver=reference.resolver(base_uri=newer.uri),
                    )
                )
        return found

    def _annotation_problems(self, report_type: ReportType) -> list[str]:
        label = f"{report_type.name}/{report_type.version}"
        found = []
        kinds = {k.value for k in AgencyKind}
        if not report_type.submitters or not report_type.submitters <= kinds:
            found.append(f"{label}: x-submitters must list agency kinds from {sorted(kinds)}")
        retention = report_type.schema.get("x-retention-days")
        if not isinstance(retention, int) or isinstance(retention, bool) or retention < 1:
            found.append(f"{label}: x-retention-days must be a whole number of days, at least 1")
        if report_type.default_tlp not in TLP_MARKINGS:
            found.append(f"{label}: x-default-tlp must be one of {', '.join(TLP_MARKINGS)}")
        for pointer, node, _required in self.fields(report_type):
            if node.get("x-sensitivity", "public") not in SENSITIVITIES:
                found.append(f"{label}: {pointer} has an unknown x-sensitivity")
            missing = [
                key
                for key in ("description", "x-description-id", "x-sensitivity")
                if key not in node
            ]
            if missing:
                found.append(f"{label}: {pointer} lacks {', '.join(missing)}")
            found.extend(f"{label}: {pointer} {problem}" for problem in _label_problems(node))
        paths = [
            *report_type.region_code_paths,
            *report_type.nik_paths,
            *report_type.report_ref_paths,
            *report_type.recipient_paths,
            *report_type.not_future_paths,
            *(path for paths in report_type.routing.values() for path in paths),
        ]
        sms = report_type.sms
        paths += [
            *sms.get("fields", []),
            *sms.get("received", []),
            *sms.get("sender", []),
            *([sms["text"]] if "text" in sms else []),
        ]
        statistics = report_type.statistics
        unknown_keys = set(statistics) - {"place", "destination", "people", "persons"}
        if unknown_keys:
            found.append(f"{label}: x-statistics has unknown keys {sorted(unknown_keys)}")
        if statistics and not set(statistics.get("place", [])) <= set(
            report_type.region_code_paths
        ):
            found.append(f"{label}: x-statistics place must be among the x-region-codes")
        paths += [
            *statistics.get("place", []),
            *statistics.get("destination", []),
            *statistics.get("persons", []),
            *([statistics["people"]] if "people" in statistics else []),
        ]
        for path in paths:
            if not self._path_exists(report_type, path):
                found.append(f"{label}: {path} names no field of the schema")
        keywords = sms.get("keywords", [])
        if sms and (not keywords or any(not str(k).isupper() for k in keywords)):
            found.append(f"{label}: x-sms needs keywords in capitals")
        return found

    def _path_exists(self, report_type: ReportType, pattern: str) -> bool:
        resolver = self.reference_registry.resolver(base_uri=report_type.uri)
        node: Any = report_type.schema
        for part in pattern.strip("/").split("/"):
            while isinstance(node, dict) and "$ref" in node:
                resolved = resolver.lookup(node["$ref"])
                node, resolver = resolved.contents, resolved.resolver
            if not isinstance(node, dict):
                return False
            node = node.get("items") if part == "*" else node.get("properties", {}).get(part)
            if node is None:
                return False
        return True


SHORT_WORD = re.compile(r"^[a-z0-9_]{1,32}$")


def _label_problems(node: dict[str, Any]) -> list[str]:
    """An enum needs an English and an Indonesian label for each value (``x-labels``):
    forms, messages and docs show them to people who do not read the codes."""
    if "enum" not in node:
        return []
    labels = node.get("x-labels", {})
    found = [
        f"lacks x-labels en and id for {value!r}"
        for value in node["enum"]
        if not {"en", "id"} <= set(labels.get(value, {}))
    ]
    # x-short: a word per value a text message may use, lower-case, one per value.
    short = node.get("x-short", {})
    if short and (
        set(short) != set(node["enum"])
        or len(set(short.values())) != len(short)
        or not all(SHORT_WORD.match(word) for word in short.values())
    ):
        found.append("has x-short words that are not one distinct [a-z0-9_] word per value")
    return found


@functools.cache
def checked_registry(directory: Path) -> SchemaRegistry:
    """The registry of ``directory``, loaded and checked once per process; the hub refuses
    to start on schemas that break a rule."""
    registry = SchemaRegistry(directory)
    problems = registry.problems()
    if problems:
        raise ConfigurationError(
            t("config.invalid", problem="the report schemas are not valid: " + "; ".join(problems))
        )
    return registry


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _as_pattern(pointer: str) -> str:
    """The field pattern of a pointer into a payload: array indexes become ``*``."""
    return "/".join("*" if part.isdigit() else part for part in pointer.split("/"))


def values_at(payload: Any, pattern: str) -> Iterator[tuple[str, Any]]:
    """(pointer, value) for each place in ``payload`` that ``pattern`` (a JSON pointer
    where ``*`` stands for every array item) names."""

    def walk(node: Any, parts: list[str], pointer: str) -> Iterator[tuple[str, Any]]:
        if not parts:
            yield pointer, node
            return
        head, rest = parts[0], parts[1:]
        if head == "*" and isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, rest, f"{pointer}/{index}")
        elif isinstance(node, dict) and head in node:
            yield from walk(node[head], rest, f"{pointer}/{head}")

    yield from walk(payload, pattern.strip("/").split("/"), "")
