"""Formats the shared schemas use beyond JSON Schema's own. Both validators — jsonschema-rs
on the hot path and python-jsonschema as the reference — get exactly these functions."""

from __future__ import annotations

import datetime
from collections.abc import Callable

WOMEN_DAY_OFFSET = 40  # a NIK adds 40 to the day of birth of women


def nik_birth_date(value: str) -> datetime.date | None:
    """The birth date a NIK encodes (PPKKCC DDMMYY SSSS), or None if it encodes none."""
    if len(value) != 16 or not value.isdigit():
        return None
    day, month, year = int(value[6:8]), int(value[8:10]), int(value[10:12])
    if day > WOMEN_DAY_OFFSET:
        day -= WOMEN_DAY_OFFSET
    # Two-digit years: the latest century that gives a real date not in the future.
    today = datetime.date.today()
    for century in (2000, 1900):
        try:
            born = datetime.date(century + year, month, day)
        except ValueError:
            continue
        if born <= today:
            return born
    return None


def is_nik(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats constrain strings only; "type" handles the rest
    return nik_birth_date(value) is not None and value[:2] != "00" and value[12:] != "0000"


FORMATS: dict[str, Callable[[object], bool]] = {"nik": is_nik}
