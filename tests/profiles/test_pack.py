"""The country packs: valid FHIR, naming the systems the hub uses, one profile per type."""

import json
from pathlib import Path

import pytest

from fhir_profiles.pack import COMMON, PACKS, ROADMAP_FILE, PackError, load, pack_of
from hub.fhir.models import get_fhir_model_class
from hub.settings import Settings


@pytest.mark.parametrize("country", ["vn", "id"])
def test_every_file_of_a_pack_and_of_common_is_a_valid_fhir_resource(country: str) -> None:
    files = sorted((PACKS / country).glob("*.json")) + sorted(COMMON.glob("*.json"))
    files = [f for f in files if f.name != ROADMAP_FILE]  # the one file that is not FHIR
    assert files
    pack = load(country)
    indexes = (
        pack.profiles,
        pack.naming_systems,
        pack.code_systems,
        pack.value_sets,
        pack.measures,
    )
    resources = [r for index in indexes for r in index.values()]
    assert len(resources) == len(files)
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_package_data_ships_the_common_files() -> None:
    pyproject = (PACKS.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'fhir_profiles = ["*/*.json"]' in pyproject
    assert all(p.relative_to(PACKS).match("*/*.json") for p in COMMON.glob("*.json"))


def test_a_pack_finds_its_profile_per_type_and_its_national_id(tmp_path: Path) -> None:
    pack = pack_of("vn")
    assert pack is pack_of("vn")
    patient = pack.profile_for("Patient")
    assert patient is not None
    assert patient["url"] == "https://moh.gov.vn/fhir/StructureDefinition/vn-patient"
    assert pack.profile_for("Basic") is None
    assert pack.national_id_system == "http://fhir.hl7.org.vn/core/sid/cccd"
    (tmp_path / "xx").mkdir()
    assert load("xx", tmp_path, common=None).national_id_system is None


def test_the_pack_names_the_hubs_identifier_systems() -> None:
    pack = load("vn")
    settings = Settings()
    for system in (settings.national_id_system, settings.facility_system):
        assert pack.naming_system(system) is not None, system


def test_the_patient_profile_requires_one_citizen_id_and_demographics() -> None:
    profile = load("vn").profiles["https://moh.gov.vn/fhir/StructureDefinition/vn-patient"]
    elements = {e["id"]: e for e in profile["differential"]["element"]}
    assert elements["Patient.identifier:cccd"]["min"] == 1
    assert elements["Patient.identifier:cccd"]["max"] == "1"
    assert elements["Patient.identifier:cccd.system"]["fixedUri"] == Settings().national_id_system
    assert all(elements[f"Patient.{e}"]["min"] == 1 for e in ("name", "gender", "birthDate"))


def test_a_broken_pack_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "xx").mkdir()
    (tmp_path / "xx" / "Patient-p.json").write_text('{"resourceType": "Patient"}')
    with pytest.raises(PackError, match="Patient-p.json: a pack holds no Patient"):
        load("xx", tmp_path)
    with pytest.raises(PackError, match="No country pack 'zz'"):
        load("zz", tmp_path)
    with pytest.raises(PackError, match="No country pack 'common'"):
        load("common")


def test_a_pack_with_two_profiles_of_one_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "xx").mkdir()
    for name in ("a", "b"):
        profile = {
            "resourceType": "StructureDefinition",
            "url": f"https://example.org/StructureDefinition/{name}",
            "kind": "resource",
            "type": "Patient",
        }
        (tmp_path / "xx" / f"StructureDefinition-{name}.json").write_text(json.dumps(profile))
    with pytest.raises(PackError, match="two profiles of Patient"):
        load("xx", tmp_path)


def test_two_files_of_one_url_in_a_folder_are_refused(tmp_path: Path) -> None:
    (tmp_path / "xx").mkdir()
    value_set = {"resourceType": "ValueSet", "url": "https://example.org/vs", "status": "active"}
    for name in ("a", "b"):
        (tmp_path / "xx" / f"ValueSet-{name}.json").write_text(json.dumps(value_set))
    with pytest.raises(PackError, match="ValueSet-b.json: https://example.org/vs is also"):
        load("xx", tmp_path)


def test_the_country_pack_names_the_national_id_unless_a_setting_does() -> None:
    assert Settings().national_id_system == "http://fhir.hl7.org.vn/core/sid/cccd"
    assert Settings(country="id").national_id_system == "https://fhir.kemkes.go.id/id/nik"
    assert Settings(country="id", national_id_system="urn:x").national_id_system == "urn:x"
    with pytest.raises(ValueError, match="No country pack 'xx'"):
        Settings(country="xx")
