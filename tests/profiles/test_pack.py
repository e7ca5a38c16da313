"""The Vietnam country pack: valid FHIR, and naming the systems the hub uses."""

from pathlib import Path

import pytest

from fhir_profiles.pack import PACKS, PackError, load
from hub.fhir.models import get_fhir_model_class
from hub.settings import Settings


def test_every_file_of_the_vietnam_pack_is_a_valid_fhir_resource() -> None:
    files = sorted((PACKS / "vn").glob("*.json"))
    assert files
    pack = load("vn")
    resources = list(pack.profiles.values()) + list(pack.naming_systems.values())
    assert len(resources) == len(files)
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


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
