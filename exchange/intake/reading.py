"""Reading a short structured text message into a report, from the schemas alone.

A message is a keyword naming the report type, then one word per field in the order the
type's ``x-sms`` lists, then free text::

    TPPO 36.03.11.2009 TINGGI calo,dokumen_palsu 5 MY Rombongan berangkat malam ini

Each word is read by what its field's schema says: an enum value by its code, its short
word (``x-short``) or its label in either language; a region by its code (dotted or the
ten digits as people type them) or by the name of a village in the sender's area; a country
by its ISO code or its name; a list by its items, separated by commas; a number as a number.
Nothing is guessed: a word that reads as nothing, or as two things, is a problem named by
its field, and the message becomes a draft to complete in the console.

Our own code: a grammar this small, driven by our own schema annotations, has no library."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from exchange.regions.countries import country_names
from exchange.registry.service import ReportType, SchemaRegistry

JAKARTA = ZoneInfo("Asia/Jakarta")
REGION_CODE = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$", re.ASCII)
# 3603112009, as typed on a phone
UNDOTTED = re.compile(r"^\d{2}(\d{2}(\d{2}(\d{4})?)?)?$", re.ASCII)
COUNTRY = re.compile(r"^[A-Za-z]{2}$")
MAX_WORDS = 200
LARGEST = 2**53 - 1  # the largest integer I-JSON (RFC 7493) carries exactly

# The village codes whose name is ``name`` within the region ``within`` (a code prefix).
VillageLookup = Callable[[str, str], list[str]]


@dataclass(frozen=True)
class Problem:
    pointer: str  # where in the payload; "" for the message as a whole
    message: str  # in Indonesian, in words the sender understands


@dataclass
class Reading:
    report_type: ReportType | None
    payload: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def keywords(registry: SchemaRegistry) -> dict[str, ReportType]:
    """Every keyword a message may start with, and the (latest) type it names."""
    found: dict[str, ReportType] = {}
    for report_type in registry.latest():
        for word in report_type.sms.get("keywords", []):
            found[str(word).upper()] = report_type
    return found


def normal(word: str) -> str:
    """A word as compared: lower case, spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", word.strip().lower())


def read_message(
    text: str,
    *,
    registry: SchemaRegistry,
    sender_agency: str,
    area: str,
    villages: VillageLookup,
    received_at: datetime,
) -> Reading:
    words = text.split()[:MAX_WORDS]
    if not words:
        return Reading(None, problems=[Problem("", "Pesan kosong.")])
    known = keywords(registry)
    report_type = known.get(words[0].upper())
    if report_type is None:
        listed = ", ".join(sorted(known))
        return Reading(
            None,
            problems=[
                Problem("", f"Kata pertama '{words[0]}' tidak dikenal. Awali dengan: {listed}.")
            ],
        )
    sms = report_type.sms
    index = registry.field_index(report_type)
    region_patterns = report_type.region_code_paths
    reading = Reading(report_type)
    rest = words[1:]
    for position, pointer in enumerate(sms.get("fields", []), start=2):
        node = index[pointer]
        # Where it went wrong, in the sender's terms: which word, and what it is for.
        label = f"Kata ke-{position} ({str(node.get('x-description-id', pointer)).rstrip('.')})"
        if not rest:
            reading.problems.append(Problem(pointer, f"{label}: belum diisi."))
            continue
        word = rest.pop(0)
        is_region = pointer in region_patterns or f"{pointer}/*" in region_patterns
        items = index.get(f"{pointer}/*") or node.get("items")
        value, problem = _read(word, node, items, is_region, area, villages)
        if problem:
            reading.problems.append(Problem(pointer, f"{label}: {problem}"))
        else:
            _put(reading.payload, pointer, value)
    if rest and "text" in sms:
        _put(reading.payload, sms["text"], " ".join(rest))
    for pointer in sms.get("received", []):
        moment = received_at.astimezone(JAKARTA)
        date_only = index[pointer].get("format") == "date"
        _put(
            reading.payload, pointer, moment.date().isoformat() if date_only else moment.isoformat()
        )
    for pointer in sms.get("sender", []):
        _put(reading.payload, pointer, sender_agency)
    return reading


def _read(
    word: str,
    node: dict[str, Any],
    items: dict[str, Any] | None,
    is_region: bool,
    area: str,
    villages: VillageLookup,
) -> tuple[Any, str | None]:
    if node.get("type") == "array" and items is not None:
        values = []
        for part in filter(None, word.split(",")):
            value, problem = _read(part, items, None, is_region, area, villages)
            if problem:
                return None, problem
            values.append(value)
        return values, None
    if node.get("type") == "integer":
        if not (word.isascii() and word.isdigit()):
            return None, f"'{word}' bukan angka."
        number = int(word)
        lowest, highest = node.get("minimum", -LARGEST), node.get("maximum", LARGEST)
        if not lowest <= number <= highest:
            return None, f"{word} di luar batas ({lowest} sampai {highest})."
        return number, None
    if "enum" in node:
        return _enum(word, node)
    if is_region:
        return _region(word, area, villages)
    if node.get("pattern") == "^[A-Z]{2}$":
        return _country(word)
    return word.replace("_", " "), None


def _enum(word: str, node: dict[str, Any]) -> tuple[Any, str | None]:
    wanted = normal(word)
    short = node.get("x-short", {})
    labels = node.get("x-labels", {})
    matches = {
        value
        for value in node["enum"]
        if wanted
        in {
            normal(str(value)),
            short.get(value, ""),
            *(normal(label) for label in labels.get(value, {}).values()),
        }
    }
    if len(matches) == 1:
        return matches.pop(), None
    choices = ", ".join(
        short.get(v) or normal(labels.get(v, {}).get("id", str(v))) for v in node["enum"]
    )
    return None, f"'{word}' tidak dikenal. Pilih salah satu: {choices}."


def _region(word: str, area: str, villages: VillageLookup) -> tuple[Any, str | None]:
    if REGION_CODE.match(word):
        return word, None
    if UNDOTTED.match(word):
        return ".".join(part for part in (word[:2], word[2:4], word[4:6], word[6:]) if part), None
    found = villages(word.replace("_", " "), area)
    if len(found) == 1:
        return found[0], None
    if not found:
        return (
            None,
            f"desa '{word}' tidak ditemukan di wilayah Anda; tulis kodenya, mis. 36.03.11.2009.",
        )
    return None, f"ada {len(found)} desa bernama '{word}'; tulis kodenya."


def _country(word: str) -> tuple[Any, str | None]:
    if COUNTRY.match(word) and word.upper() in _countries():
        return word.upper(), None
    wanted = normal(word)
    for code, names in _countries().items():
        if wanted in names:
            return code, None
    return None, f"negara '{word}' tidak dikenal; tulis kode dua hurufnya, mis. MY untuk Malaysia."


@functools.cache
def _countries() -> dict[str, set[str]]:
    """ISO 3166 codes and the words that name them: the Indonesian and English names."""
    english = country_names("en")
    return {
        code: {normal(name), normal(english.get(code, code))}
        for code, name in country_names("id").items()
    }


def _put(document: dict[str, Any], pointer: str, value: Any) -> None:
    parts = pointer.strip("/").split("/")
    node = document
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
