"""Reading text messages, word by word, from the schemas alone: what each word may be,
and that a word read as nothing (or as two things) is a problem, never a guess."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange.intake.reading import read_message
from exchange.registry.service import SchemaRegistry, default_schemas_dir

REGISTRY = SchemaRegistry(default_schemas_dir())
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
VILLAGES = {"tanjakan mekar": ["36.03.11.2009"], "sukamaju": ["36.03.11.2001", "36.03.11.2002"]}


def read(text: str) -> tuple[dict, list[tuple[str, str]], str | None]:
    reading = read_message(
        text,
        registry=REGISTRY,
        sender_agency="pimpasa-tanjakan-mekar",
        area="36.03.11.2009",
        villages=lambda name, area: VILLAGES.get(name.lower(), []),
        received_at=NOW,
    )
    name = reading.report_type.name if reading.report_type else None
    return reading.payload, [(p.pointer, p.message) for p in reading.problems], name


def test_a_full_early_warning_reads_into_a_valid_payload() -> None:
    payload, problems, name = read(
        "tppo Tanjakan_Mekar Tinggi calo,dokumen_palsu 5 Malaysia Berangkat malam ini"
    )
    assert problems == []
    assert name == "village-early-warning"
    assert payload == {
        "village_code": "36.03.11.2009",
        "severity": "high",
        "indicators": ["calo_recruiting", "fake_or_borrowed_documents"],
        "persons_at_risk": {"count": 5},
        "destination_country": "MY",
        "narrative": "Berangkat malam ini",
        "observed_at": "2026-11-30T11:00:00+07:00",  # when the hub received it, in WIB
    }
    assert REGISTRY.get("village-early-warning").violations(payload) == []


@pytest.mark.parametrize(
    ("text", "pointer", "words"),
    [
        ("HALO apa kabar", "", "Kata pertama 'HALO' tidak dikenal"),
        ("TPPO 36.03.11.2009 sangat calo 5 MY", "/severity", "'sangat' tidak dikenal"),
        ("TPPO 36.03.11.2009 tinggi calo lima MY", "/persons_at_risk/count", "bukan angka"),
        ("TPPO 36.03.11.2009 tinggi calo \u0665 MY", "/persons_at_risk/count", "bukan angka"),
        ("TPPO Sukamaju tinggi calo 5 MY", "/village_code", "ada 2 desa"),
        ("TPPO Antah tinggi calo 5 MY", "/village_code", "tidak ditemukan"),
        ("TPPO 36.03.11.2009 tinggi calo 5 Atlantis", "/destination_country", "tidak dikenal"),
        ("TPPO 36.03.11.2009", "/severity", "belum diisi"),
    ],
)
def test_a_word_that_reads_as_nothing_or_as_two_things_is_a_problem_at_its_field(
    text: str, pointer: str, words: str
) -> None:
    _, problems, _ = read(text)
    assert any(p == pointer and words in message for p, message in problems), problems


def test_a_village_code_typed_without_dots_and_a_country_by_its_name() -> None:
    payload, problems, _ = read("WASPADA 3603112009 kritis anak,rombongan 12 Kamboja")
    assert problems == []
    assert payload["village_code"] == "36.03.11.2009"
    assert payload["destination_country"] == "KH"
    assert payload["indicators"] == ["minor_involved", "group_departure"]


def test_a_referral_names_its_sender_and_still_lacks_the_person() -> None:
    payload, problems, name = read(
        "RUJUK 36.03.11.2009 tinggi bp3mi-banten diduga pulang,hukum Dipulangkan"
    )
    assert (name, problems) == ("victim-referral", [])
    assert payload["referring_agency"] == "pimpasa-tanjakan-mekar"
    missing = {
        v.params.get("property") for v in REGISTRY.get("victim-referral").violations(payload)
    }
    assert missing == {"consent", "victim"}  # never by SMS: a draft to complete
