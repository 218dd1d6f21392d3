"""Formats the shared schemas use beyond JSON Schema's own. Both validators — jsonschema-rs
on the hot path and python-jsonschema as the reference — get exactly these functions."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import phonenumbers

PHONE_REGION = "ID"  # a number typed without +country is an Indonesian one (0812...)

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


E164_MAX_DIGITS = 15


def e164(value: str) -> str | None:
    """A telephone number as typed (``0812-3456-7890``, ``+62 812 3456 7890``,
    ``0062 812...``) in E.164 form, or None if it cannot be a number (the ``phonenumbers``
    port of libphonenumber: length and country rules, not a regex)."""
    typed = value.strip()
    if typed.startswith("00"):  # the international prefix most phones accept for "+"
        typed = "+" + typed[2:]
    try:
        number = phonenumbers.parse(typed, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:  # too short, local only...
        return None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted if len(formatted) - 1 <= E164_MAX_DIGITS else None


def is_phone(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return e164(value) is not None


FORMATS: dict[str, Callable[[object], bool]] = {"nik": is_nik, "phone": is_phone}
