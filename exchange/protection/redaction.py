"""Redaction: a reader gets the fields its clearance covers and the others removed (never
blanked or faked), with the JSON pointers of what was withheld."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from exchange.errors import pointer_token
from exchange.registry.service import ReportType, SchemaRegistry, values_at


def withheld_pointers(
    payload: dict[str, Any],
    *,
    report_type: ReportType,
    registry: SchemaRegistry,
    clearance: Collection[str],
) -> list[str]:
    """Pointers of the values above ``clearance``, outermost only (a withheld object's
    fields are not listed again)."""
    withheld: list[str] = []
    for pattern, sensitivity in registry.classified(report_type):
        if sensitivity in clearance:
            continue
        for pointer, _ in values_at(payload, pattern):
            if not any(pointer == w or pointer.startswith(w + "/") for w in withheld):
                withheld.append(pointer)
    return withheld


WITHOUT_CONSENT = "identifying"


def consented(
    payload: dict[str, Any], *, report_type: ReportType, clearance: Collection[str]
) -> Collection[str]:
    """The clearance a recipient has for this payload: without the person's consent to
    sharing (the type's ``x-consent`` field is false) nobody gets identifying fields,
    whatever its clearance. The HTCDS guidance lets case data be shared for a referral
    without consent only once it identifies no one."""
    path = report_type.consent_path
    if path is not None and any(value is False for _, value in values_at(payload, path)):
        return [c for c in clearance if c != WITHOUT_CONSENT]
    return clearance


def without(document: Any, pointers: Collection[str], at: str = "") -> Any:
    """A copy of ``document`` without the values at ``pointers`` (array items removed, so
    later items move up)."""
    if isinstance(document, dict):
        return {
            key: without(value, pointers, f"{at}/{pointer_token(key)}")
            for key, value in document.items()
            if f"{at}/{pointer_token(key)}" not in pointers
        }
    if isinstance(document, list):
        return [
            without(value, pointers, f"{at}/{index}")
            for index, value in enumerate(document)
            if f"{at}/{index}" not in pointers
        ]
    return document


def redact(
    payload: dict[str, Any],
    *,
    report_type: ReportType,
    registry: SchemaRegistry,
    clearance: Collection[str],
) -> tuple[dict[str, Any], list[str]]:
    """The payload as a reader with ``clearance`` may see it, and what was withheld."""
    pointers = withheld_pointers(
        payload,
        report_type=report_type,
        registry=registry,
        clearance=consented(payload, report_type=report_type, clearance=clearance),
    )
    if not pointers:
        return payload, []
    redacted: dict[str, Any] = without(payload, set(pointers))
    return redacted, pointers


def reasons(
    payload: dict[str, Any],
    *,
    report_type: ReportType,
    registry: SchemaRegistry,
    clearance: Collection[str],
    withheld: Collection[str],
) -> dict[str, str]:
    """Why each withheld pointer was: ``clearance`` when the reader's clearance does not
    cover the field, ``consent`` when only the person's refusal to share kept it back."""
    beyond = withheld_pointers(
        payload, report_type=report_type, registry=registry, clearance=clearance
    )
    return {
        pointer: "clearance"
        if any(pointer == b or pointer.startswith(b + "/") for b in beyond)
        else "consent"
        for pointer in withheld
    }
