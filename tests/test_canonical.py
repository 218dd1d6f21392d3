"""The fast canonical JSON writes exactly what the RFC 8785 reference writes, or fails as it
does, on generated documents and on the cases where orjson and RFC 8785 part ways."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.canonical import _plain, canonical_json
from exchange.registry.service import default_schemas_dir

# Every code point, lone surrogates included (hypothesis leaves them out by default).
ANY_CHARACTER = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from(['"', "\\", "\x7f", "\u2028", "\ufeff", "\uffff", "\U0001f600", "\x1f"]),
)
TEXT = st.text(ANY_CHARACTER, max_size=12)
# Keys from a few characters on both sides of where UTF-8 and UTF-16 orders part ways, so
# that one object often holds several of them.
CLOSE_KEYS = st.text(st.sampled_from(["a", "\u00e9", "\ue000", "\uffff", "\U0001f600"]), max_size=2)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(-(2**53) - 2, 2**53 + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-4, max_value=1e-4),
    st.floats(min_value=-1e22, max_value=1e22),
    st.sampled_from([1e-5, 9.99999e-6, 1e-6, 1e-7, 1e15, 1e16, 1e21, 1e22, -0.0, 0.5, 5e-324]),
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(TEXT, inner, max_size=5)),
    max_leaves=30,
)


# Documents made of leaves the fast path takes, so that whole documents take it too (one
# leaf it does not take sends the whole document to the reference).
PLAIN_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.floats(min_value=1e-5, max_value=1e15).filter(lambda x: not x.is_integer()),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12),
)
PLAIN_JSON = st.recursive(
    PLAIN_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(CLOSE_KEYS, inner, max_size=5),
        st.dictionaries(TEXT, inner, max_size=5),
    ),
    max_leaves=30,
)


def reference(document: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(document)
    except Exception as error:
        return type(error)


def ours(document: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(document)
    except Exception as error:
        return type(error)


@settings(max_examples=1500, deadline=None)
@given(JSON)
def test_canonical_json_is_the_reference_on_any_document(document: Any) -> None:
    assert ours(document) == reference(document)


@settings(max_examples=1500, deadline=None)
@given(PLAIN_JSON)
def test_canonical_json_is_the_reference_where_it_takes_the_fast_path(document: Any) -> None:
    assert ours(document) == reference(document)


@pytest.mark.parametrize(
    "document",
    [
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 and UTF-8 order part ways above U+FFFF
        {"b": 1.0, "a": -0.0},  # integral floats: "1" and "0", not "1.0" and "-0.0"
        [1e-6, 9.9e-6, 1e16, 1e21, 123456789012345.6],  # where the notations change
        [2**53, -(2**53)],  # outside the integers RFC 8785 allows
        [float("nan")],
        {"when": __import__("datetime").date(2026, 1, 1)},  # not JSON at all
        {1: "a key that is not a string"},
        ("a", "tuple"),
    ],
)
def test_the_cases_where_orjson_differs_take_the_reference(document: Any) -> None:
    assert not _plain(document)
    assert ours(document) == reference(document)


def test_a_lone_surrogate_fails_as_in_the_reference() -> None:
    """orjson refuses it and the reference says what is wrong."""
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json({"name": "\ud800"})


def test_a_document_nested_deeper_than_the_walk_goes_takes_the_reference() -> None:
    document: Any = 1
    for _ in range(900):
        document = [document]
    assert canonical_json(document) == rfc8785.dumps(document)


def test_every_example_report_takes_the_fast_path_and_matches() -> None:
    examples = sorted(default_schemas_dir().glob("*/examples/valid/*.json"))
    assert len(examples) >= 5
    for path in examples:
        document = json.loads(path.read_text())
        assert _plain(document), path  # what makes the hub faster
        assert canonical_json(document) == rfc8785.dumps(document), path
