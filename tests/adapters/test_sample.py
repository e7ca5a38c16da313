"""Tests of the synthetic Vietnamese hospital bundles."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from support import references

from adapters.simulate import sample
from adapters.simulate.sample import CCCD_SYSTEM, PROVINCES, sample_bundles

BUNDLES = sample_bundles(n_patients=20, seed=7)
CCCD_PROVINCES = {p.cccd_code for p in PROVINCES}


def resources_of(resource_type: str) -> list[dict[str, Any]]:
    """Return every resource of a type in the sample bundles."""
    return [
        entry["resource"]
        for bundle in BUNDLES
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == resource_type
    ]


def record_keys(bundles: list[dict[str, Any]]) -> list[str]:
    """Return the ifNoneExist of every entry but the facilities, which bundles share."""
    return [
        entry["request"]["ifNoneExist"]
        for bundle in bundles
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] != "Organization"
    ]


def test_same_seed_gives_same_bundles() -> None:
    assert sample_bundles(20, seed=7) == BUNDLES
    assert sample_bundles(3, seed=7) == BUNDLES[:3]


def test_another_seed_gives_other_identifiers() -> None:
    assert not set(record_keys(BUNDLES)) & set(record_keys(sample_bundles(20, seed=8)))


def test_bundles_hold_the_expected_resources() -> None:
    for bundle in BUNDLES:
        types = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
        assert bundle["type"] == "transaction"
        assert types[:2] == ["Organization", "Patient"]
        assert 1 <= types.count("Encounter") <= 3
        assert types.count("Condition") >= 1
        assert types.count("Observation") >= 3


@pytest.mark.parametrize("index", range(len(BUNDLES)))
def test_every_resource_validates_as_fhir_r4(index: int) -> None:
    bundle = BUNDLES[index]
    get_fhir_model_class("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_citizen_ids_agree_with_gender_and_birth_year() -> None:
    for patient in resources_of("Patient"):
        (cccd,) = [i["value"] for i in patient["identifier"] if i["system"] == CCCD_SYSTEM]
        assert re.fullmatch(r"\d{12}", cccd), cccd
        assert cccd[:3] in CCCD_PROVINCES
        year = int(patient["birthDate"][:4])
        female = patient["gender"] == "female"
        assert int(cccd[3]) == (year // 100 - 19) * 2 + female, (cccd, patient["birthDate"])
        assert cccd[4:6] == f"{year % 100:02d}"


def test_insurance_cards_are_well_formed() -> None:
    for patient in resources_of("Patient"):
        (card,) = [i["value"] for i in patient["identifier"] if i["system"] == sample.BHYT_SYSTEM]
        assert re.fullmatch(r"[A-Z]{2}[1-5]\d{12}", card), card


def test_facility_codes_have_five_digits() -> None:
    for org in resources_of("Organization"):
        assert re.fullmatch(r"\d{5}", org["identifier"][0]["value"])


def test_every_reference_resolves_within_its_bundle() -> None:
    for bundle in BUNDLES:
        full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
        assert all(url.startswith("urn:uuid:") for url in full_urls)
        assert len(full_urls) == len(bundle["entry"])
        for ref in references(bundle):
            assert ref in full_urls, ref


def test_every_entry_is_a_conditional_create_on_its_identifier() -> None:
    for bundle in BUNDLES:
        for entry in bundle["entry"]:
            resource, request = entry["resource"], entry["request"]
            ident = resource["identifier"][0]
            assert request["method"] == "POST"
            assert request["url"] == resource["resourceType"]
            assert request["ifNoneExist"] == f"identifier={ident['system']}|{ident['value']}"


def test_record_identifiers_are_unique() -> None:
    keys = record_keys(BUNDLES)
    assert len(keys) == len(set(keys))


def test_cli_writes_one_file_per_patient(tmp_path: Path) -> None:
    sample.main(["--patients", "3", "--seed", "7", "--out", str(tmp_path)])
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3
    assert json.loads(files[0].read_text(encoding="utf-8")) == BUNDLES[0]
