"""Membership of codes in the value sets of a pack: compose, expansion, ICD-10, LOINC, UCUM."""

import json
from pathlib import Path

import pytest

from fhir_profiles.pack import COMMON, Pack, load
from fhir_profiles.terminology import Terminology, loinc_check_digit_ok, ucum_ok

VS = "https://ehrhub.org/fhir/ValueSet/"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
COLOURS = "https://example.org/colours"


@pytest.fixture(scope="module")
def vn() -> Terminology:
    return Terminology(load("vn"))


def value_set(name: str, **parts: object) -> dict[str, object]:
    return {"resourceType": "ValueSet", "url": f"{VS}{name}", "status": "active", **parts}


@pytest.fixture(scope="module")
def made_up() -> Terminology:
    """A pack of one fragment CodeSystem and value sets of every kind of compose."""
    pack = Pack("xx")
    pack.code_systems[COLOURS] = {
        "resourceType": "CodeSystem",
        "url": COLOURS,
        "status": "active",
        "content": "fragment",
        "concept": [{"code": "red", "concept": [{"code": "crimson"}]}, {"code": "blue"}],
    }
    resources = [
        value_set("warm", compose={"include": [{"system": COLOURS, "concept": [{"code": "red"}]}]}),
        value_set("colours", compose={"include": [{"system": COLOURS}]}),
        value_set(
            "classes-and-warm",
            compose={
                "include": [{"valueSet": [f"{VS}encounter-class"]}, {"valueSet": [f"{VS}warm"]}]
            },
        ),
        value_set(
            "outpatient",
            compose={
                "include": [{"valueSet": [f"{VS}encounter-class|1.0"]}],
                "exclude": [{"system": ACT_CODE, "concept": [{"code": "IMP"}, {"code": "ACUTE"}]}],
            },
        ),
        value_set("expanded", expansion={"contains": [{"system": COLOURS, "code": "green"}]}),
        value_set(
            "filtered",
            compose={"include": [{"system": ICD10, "filter": [{"property": "concept"}]}]},
        ),
        value_set("snomed", compose={"include": [{"system": "http://snomed.info/sct"}]}),
        value_set("loop", compose={"include": [{"valueSet": [f"{VS}loop"]}]}),
    ]
    common = load("vn")
    pack.value_sets.update(common.value_sets)
    pack.code_systems.update(common.code_systems)
    pack.value_sets.update({str(r["url"]): r for r in resources})
    return Terminology(pack)


def test_a_concept_list_decides_membership(vn: Terminology) -> None:
    assert vn.member(f"{VS}encounter-class", ACT_CODE, "AMB") is True
    assert vn.member(f"{VS}encounter-class", ACT_CODE, "XYZ") is False
    assert vn.member(f"{VS}encounter-class", "http://example.org/other", "AMB") is False
    # A code without a system (an element of type `code`) is looked up by its code alone.
    assert vn.member(f"{VS}encounter-class", None, "EMER") is True


def test_icd10_holds_every_category_and_subcategory_in_the_dotted_form(vn: Terminology) -> None:
    icd10 = f"{VS}icd10"
    for code in ("J18", "J18.9", "I10", "E11", "U07.1", "Z99.9", "B18.00", "A00.0", "N39.0"):
        assert vn.member(icd10, ICD10, code) is True, code
    for code in ("J18.99", "J189", "j18.9", "A00-A09", "I", "Z99.7", "I10.0", "E11.90"):
        assert vn.member(icd10, ICD10, code) is False, code
    assert vn.member(icd10, LOINC, "J18.9") is False


def test_icd10_code_system_is_complete_and_counts_its_codes() -> None:
    icd10 = load("vn").code_systems[ICD10]
    assert icd10["content"] == "complete"
    assert icd10["count"] == 12246
    assert all("display" not in c for c in icd10["concept"])


@pytest.mark.parametrize("code", ["8867-4", "2339-0", "718-7", "85354-9", "29463-7", "8310-5"])
def test_known_loinc_codes_have_a_right_check_digit(code: str) -> None:
    assert loinc_check_digit_ok(code)


@pytest.mark.parametrize("code", ["8867-5", "718-0", "8867", "8867-44", "12345678-1", "a867-4"])
def test_a_wrong_check_digit_or_form_is_not_loinc(code: str) -> None:
    assert not loinc_check_digit_ok(code)


def test_all_of_loinc_is_decided_by_form(vn: Terminology) -> None:
    assert vn.member(f"{VS}loinc", LOINC, "8867-4") is True
    assert vn.member(f"{VS}loinc", LOINC, "8867-5") is False
    assert vn.member(f"{VS}loinc", LOINC, "LA6576-8") is None  # an answer code: not checked
    vital = "http://hl7.org/fhir/ValueSet/observation-vitalsignresult"
    assert vn.member(vital, LOINC, "8867-4") is True
    assert vn.member(vital, LOINC, "2339-0") is False


@pytest.mark.parametrize(
    "unit",
    ["%", "/min", "mm[Hg]", "Cel", "kg/m2", "10*3/uL", "mL/min/{1.73_m2}", "{beats}/min"]
    + ["meq/L", "[iU]/L", "s-1", "m2.s-1", "(kg.m)/s2", "cm[H2O]", "mg{total}", "1/min"],
)
def test_ucum_syntax_accepts_units_of_common_atoms(unit: str) -> None:
    assert ucum_ok(unit)


@pytest.mark.parametrize(
    "unit", ["", "mmHg", "IU/L", "mcg", "bpm", "degC", "sec", "kg m", "m/", "//min", "(kg", "kg)"]
)
def test_ucum_syntax_refuses_nonsense(unit: str) -> None:
    assert not ucum_ok(unit)


def test_all_of_ucum_is_the_common_units_or_the_syntax(vn: Terminology) -> None:
    ucum = f"{VS}ucum"
    assert not ucum_ok("[Btu]")  # an atom the syntax check leaves out ...
    assert vn.member(ucum, UCUM, "[Btu]") is True  # ... but one of the common units
    assert vn.member(ucum, UCUM, "mg/dL") is True
    assert vn.member(ucum, UCUM, "furlongs/fortnight") is False
    assert vn.member("http://hl7.org/fhir/ValueSet/ucum-common", UCUM, "kg/m2") is True


def test_a_whole_code_system_of_the_pack_decides_when_complete(made_up: Terminology) -> None:
    # The colours are a fragment: a listed code (nested included) is in, others are undecided.
    assert made_up.member(f"{VS}colours", COLOURS, "crimson") is True
    assert made_up.member(f"{VS}colours", COLOURS, "mauve") is None
    assert made_up.member(f"{VS}snomed", "http://snomed.info/sct", "22298006") is None


def test_include_value_sets_are_united_and_excludes_removed(made_up: Terminology) -> None:
    assert made_up.member(f"{VS}classes-and-warm", ACT_CODE, "AMB") is True
    assert made_up.member(f"{VS}classes-and-warm", COLOURS, "red") is True
    assert made_up.member(f"{VS}classes-and-warm", COLOURS, "blue") is False
    assert made_up.member(f"{VS}outpatient", ACT_CODE, "AMB") is True
    assert made_up.member(f"{VS}outpatient", ACT_CODE, "IMP") is False
    assert made_up.systems(f"{VS}classes-and-warm") == {ACT_CODE, COLOURS}


def test_an_expansion_filter_unknown_or_looping_value_set(made_up: Terminology) -> None:
    assert made_up.member(f"{VS}expanded", COLOURS, "green") is True
    assert made_up.member(f"{VS}expanded", COLOURS, "red") is False
    assert made_up.member(f"{VS}filtered", ICD10, "J18.9") is None  # filters are not evaluated
    assert made_up.member(f"{VS}filtered", ICD10, "J18.99") is False  # not ICD-10 at all
    assert made_up.member(f"{VS}unknown", COLOURS, "red") is None
    assert made_up.member(f"{VS}loop", COLOURS, "red") is None
    assert not made_up.knows(f"{VS}unknown")
    assert made_up.knows(f"{VS}warm|2.0")
    assert made_up.systems(f"{VS}unknown") == frozenset()


def test_every_pack_carries_the_common_files(tmp_path: Path) -> None:
    urls = {json.loads(p.read_text())["url"] for p in COMMON.glob("*.json")}
    (tmp_path / "xx").mkdir()
    for pack in (load("vn"), load("xx", tmp_path)):
        assert urls <= set(pack.value_sets) | set(pack.code_systems) | set(pack.measures)
        assert Terminology(pack).member(f"{VS}icd10", ICD10, "I10") is True


def test_a_country_file_replaces_a_common_one_of_the_same_url(tmp_path: Path) -> None:
    (tmp_path / "xx").mkdir()
    own = value_set(
        "encounter-class", compose={"include": [{"system": ACT_CODE, "concept": [{"code": "HH"}]}]}
    )
    (tmp_path / "xx" / "ValueSet-encounter-class.json").write_text(json.dumps(own))
    terms = Terminology(load("xx", tmp_path))
    assert terms.member(f"{VS}encounter-class", ACT_CODE, "HH") is True
    assert terms.member(f"{VS}encounter-class", ACT_CODE, "AMB") is False
