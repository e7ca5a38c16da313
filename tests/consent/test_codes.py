"""provision.code: exact codes, and ICD-10's hierarchy (codes, blocks, chapters)."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consent import Access, MalformedConsent, Policy, Record
from consent.icd10 import CHAPTERS, ICD10_SYSTEMS, icd10_key

ROOT = Path(__file__).parents[2]
SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
ASKING = Access("79001", datetime(2026, 6, 1, tzinfo=UTC))


def concept(*codes: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": s, "code": c} for s, c in codes]}


def denies(concepts: list[dict[str, Any]], *codes: tuple[str, str]) -> bool:
    """Tell whether a deny of these concepts (under a permit default) hides a record coded so."""
    resource = {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "scope": SCOPE,
        "provision": {"type": "deny", "code": concepts},
    }
    policy = Policy.from_consents([resource], {}, "permit")
    rec = Record("79002", "Condition", codes=frozenset(codes))
    return not policy.decide(ASKING, rec).allowed


def test_exact_codes_match_by_system_and_code() -> None:
    lab = [concept((LOINC, "1234-5"))]
    assert denies(lab, (LOINC, "1234-5"))
    assert denies(lab, ("urn:other", "x"), (LOINC, "1234-5"))
    assert not denies(lab, (LOINC, "1234-6"))
    assert not denies(lab, ("urn:other", "1234-5"))
    assert not denies(lab)


def test_any_concept_and_any_of_its_codings() -> None:
    two = [concept((LOINC, "1")), concept(("urn:local", "a"), ("urn:other", "b"))]
    assert denies(two, (LOINC, "1"))
    assert denies(two, ("urn:other", "b"))
    assert not denies(two, ("urn:local", "b"))


@pytest.mark.parametrize(
    ("written", "covered", "not_covered"),
    [
        # A category covers itself and its subcodes, with or without the dot, any case.
        ("F32", ["F32", "F32.1", "F321", "f32.1", "F32.10", " F32.9 "], ["F33", "F3", "F4", "E32"]),
        # A subcode covers itself and below, not its parent or siblings.
        ("F32.1", ["F32.1", "F321", "F32.10"], ["F32", "F32.2", "F33.1"]),
        ("F321", ["F32.1"], ["F32"]),
        # A block covers its categories and their subcodes.
        ("F30-F39", ["F30", "F30.0", "F35.1", "F39", "F39.9"], ["F29.9", "F40", "G30"]),
        # A chapter by its roman numeral: V is F00-F99.
        ("V", ["F00", "F10.2", "F99"], ["E99", "G00", "V01"]),
        ("XIX", ["S00.0", "T14", "T98.3"], ["R99", "U07.1", "V01"]),
        ("I", ["A00.0", "A90", "B99"], ["C00"]),
        # Dagger and asterisk marks of the dual classification are not part of the code.
        ("G01", ["G01*"], ["G02*"]),
    ],
)
def test_icd10_hierarchy(written: str, covered: list[str], not_covered: list[str]) -> None:
    concepts = [concept((ICD10, written))]
    for code in covered:
        assert denies(concepts, (ICD10, code)), code
    for code in not_covered:
        assert not denies(concepts, (ICD10, code)), code


def test_the_hierarchy_is_icd10s_alone() -> None:
    # Another system matches exactly, even when its codes look like ICD-10's.
    assert not denies([concept((ICD10_CM, "F32"))], (ICD10_CM, "F32.1"))
    assert denies([concept((ICD10_CM, "F32"))], (ICD10_CM, "F32"))
    # And an ICD-10 consent does not cover another system's codes.
    assert not denies([concept((ICD10, "F32"))], (ICD10_CM, "F32.1"))
    assert not denies([concept((ICD10, "V"))], ("urn:local", "F32"))


@pytest.mark.parametrize(
    ("concepts", "path", "problem"),
    [
        ([concept((ICD10, "F30–F39"))], "code[0].coding[0].code", "not an ICD-10 code"),
        ([concept((ICD10, "F39-F30"))], "code[0].coding[0].code", "not an ICD-10 code"),
        ([concept((ICD10, "Chapter V"))], "code[0].coding[0].code", "chapter (I to XXII)"),
        ([concept((ICD10, "XXIII"))], "code[0].coding[0].code", "not an ICD-10 code"),
        ([{"text": "depression"}], "code[0].coding", "text alone"),
        ([concept(("", "F32"))], "code[0].coding[0].system", "missing"),
        ([{"coding": [{"system": LOINC}]}], "code[0].coding[0].code", "missing"),
        ([], "code", "non-empty array"),
    ],
)
def test_codes_that_cannot_be_matched_are_refused(
    concepts: list[Any], path: str, problem: str
) -> None:
    with pytest.raises(MalformedConsent) as caught:
        denies(concepts)
    assert caught.value.path == f"Consent.provision.{path}"
    assert problem in str(caught.value)


def test_the_icd10_systems_are_the_packs() -> None:
    common = json.loads((ROOT / "fhir_profiles/common/CodeSystem-icd10.json").read_text())
    condition = json.loads(
        (ROOT / "fhir_profiles/vn/StructureDefinition-vn-condition.json").read_text()
    )
    fixed = {
        e["fixedUri"]
        for e in condition["differential"]["element"]
        if e["id"] == "Condition.code.coding:icd10.system"
    }
    assert ICD10_SYSTEMS == {common["url"]} == fixed


def test_every_icd10_category_lies_in_exactly_one_chapter() -> None:
    common = json.loads((ROOT / "fhir_profiles/common/CodeSystem-icd10.json").read_text())
    categories = [c["code"] for c in common["concept"]]
    subcodes = [s["code"] for c in common["concept"] for s in c.get("concept", ())]
    assert len(categories) > 2000 and len(subcodes) > 9000
    # Vietnam's list keeps dengue as A90 and A91, which WHO's 2019 edition moved.
    for code in [*categories, *subcodes, "A90", "A91"]:
        key = icd10_key(code)
        assert key is not None, code
        chapters = [n for n, (low, high) in CHAPTERS.items() if low <= key[:3] <= high]
        assert len(chapters) == 1, (code, chapters)
    used = {n for n, (low, high) in CHAPTERS.items() for c in categories if low <= c <= high}
    assert used == set(CHAPTERS)
