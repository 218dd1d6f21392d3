"""Countries by their ISO 3166-1 alpha-2 codes, named in Indonesian and English from CLDR
(through babel, already the console's locale data): what the field form offers and what a
text message may name."""

from __future__ import annotations

import functools

from babel import Locale


@functools.cache
def country_names(locale: str) -> dict[str, str]:
    """Two-letter country codes and their names in ``locale`` (``id`` or ``en``), by name."""
    named = {
        code: str(name)
        for code, name in Locale(locale).territories.items()
        if isinstance(code, str) and len(code) == 2 and code.isalpha()
    }
    return dict(sorted(named.items(), key=lambda item: item[1]))
