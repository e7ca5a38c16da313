"""Tests of the XML130 adapter without the hub: mapping, rejections, 4210 names, streaming."""

import base64
import io
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from adapters.base import (
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    CCHN_SYSTEM,
    ICD10_SYSTEM,
    Facility,
    Output,
    Rejection,
)
from adapters.xml130 import fields, parse
from adapters.xml130.generate import (
    episode,
    episode_files,
    episodes,
    facility_code,
    generate,
    hoso_xml,
    main,
    submission,
    write,
)

SEED = 130_001
FACILITY = facility_code(SEED)


def bundles(data: bytes, facility: Facility | None = None) -> list[Output]:
    """Return what parsing a file in memory gives."""
    return list(parse(io.BytesIO(data), facility))


def resources(output: Output, resource_type: str) -> list[dict[str, Any]]:
    """Return the resources of one type in a Bundle."""
    assert not isinstance(output, Rejection), output
    return [
        e["resource"] for e in output["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def one_episode(**xml1: str) -> dict[str, list[dict[str, str]]]:
    """Return a generated episode with some XML1 fields changed."""
    tables = episode(SEED, 0, FACILITY)
    tables["XML1"][0].update(xml1)
    return tables


GENERATED = bundles(submission(FACILITY, episodes(20, SEED)))


def test_every_generated_hoso_gives_a_bundle() -> None:
    assert len(GENERATED) == 20
    assert not [o for o in GENERATED if isinstance(o, Rejection)]


def test_the_same_seed_gives_the_same_file(tmp_path: Path) -> None:
    main(["--episodes", "5", "--seed", str(SEED), "--out", str(tmp_path / "a.xml")])
    main(["--episodes", "5", "--seed", str(SEED), "--out", str(tmp_path / "b.xml")])
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()
    assert (tmp_path / "a.xml").read_bytes() != submission(FACILITY, episodes(5, SEED + 1))


def test_generated_data_is_realistic() -> None:
    xml1 = [episode(SEED, i, FACILITY)["XML1"][0] for i in range(50)]
    assert all(re.fullmatch(r"\d{12}", r["SO_CCCD"]) for r in xml1)
    cards = [c for r in xml1 for c in r["MA_THE_BHYT"].split(";")]
    assert any(re.fullmatch(r"[A-Z]{2}\d{13}", c) for c in cards)  # old 15 characters
    assert any(re.fullmatch(r"\d{10}", c) for c in cards)  # new BHXH number
    assert any(";" in r["MA_THE_BHYT"] for r in xml1)
    assert any(
        re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", r["HO_TEN"])
        for r in xml1
    )
    assert all(re.fullmatch(r"[A-Z]\d\d(\.\d)?", r["MA_BENH_CHINH"]) for r in xml1)


@pytest.mark.parametrize("index", range(0, 20, 4))
def test_every_resource_validates_as_fhir_r4(index: int) -> None:
    output = GENERATED[index]
    assert not isinstance(output, Rejection)
    get_fhir_model_class("Bundle").model_validate(output)
    for entry in output["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_xml1_maps_to_patient_encounter_coverage_and_conditions() -> None:
    tables = one_episode(
        HO_TEN="Nguyễn Thị Thu Hà",
        GIOI_TINH="2",
        NGAY_SINH="198503120000",
        SO_CCCD="079185000123",
        MA_BENH_CHINH="J18.9",
        MA_BENH_KT="I10;E11.9",
        NGAY_VAO="202503010830",
        NGAY_RA="202503051000",
        MA_LOAI_KCB="03",
    )
    (output,) = bundles(submission(FACILITY, [tables]))
    (patient,) = resources(output, "Patient")
    assert patient["name"][0] == {
        "use": "official",
        "text": "Nguyễn Thị Thu Hà",
        "family": "Nguyễn",
        "given": ["Thị", "Thu", "Hà"],
    }
    assert patient["gender"] == "female" and patient["birthDate"] == "1985-03-12"
    assert {"system": CCCD_SYSTEM, "value": "079185000123"} in [
        {k: i[k] for k in ("system", "value")} for i in patient["identifier"]
    ]
    (enc,) = resources(output, "Encounter")
    assert enc["period"] == {
        "start": "2025-03-01T08:30:00+07:00",
        "end": "2025-03-05T10:00:00+07:00",
    }
    assert enc["class"]["code"] == "IMP"
    assert enc["identifier"][0]["system"] == Facility(FACILITY).system("visit")
    codes = [c["code"]["coding"][0] for c in resources(output, "Condition")]
    assert [c["code"] for c in codes] == ["J18.9", "I10", "E11.9"]
    assert {c["system"] for c in codes} == {ICD10_SYSTEM}
    assert [d["rank"] for d in enc["diagnosis"]] == [1, 2, 3]
    org = [e for e in output["entry"] if e["resource"]["resourceType"] == "Organization"]
    assert org[0]["resource"]["identifier"][0]["value"] == FACILITY


def test_detail_tables_map_to_their_resources() -> None:
    output = GENERATED[0]
    tables = episode(SEED, 0, FACILITY)
    assert len(resources(output, "MedicationRequest")) == len(tables["XML2"])
    assert len(resources(output, "MedicationDispense")) == len(tables["XML2"])
    assert len(resources(output, "ChargeItem")) == len(tables["XML3"])
    assert len(resources(output, "Observation")) == len(tables["XML4"])
    assert len(resources(output, "DocumentReference")) >= len(tables["XML5"])
    reports = resources(output, "DiagnosticReport")
    assert sum(len(r["result"]) for r in reports) == len(tables["XML4"])
    quantities = [
        o["valueQuantity"]
        for b in GENERATED
        for o in resources(b, "Observation")
        if "valueQuantity" in o
    ]
    assert {"value", "unit", "system", "code"} <= set(quantities[0])
    assert any(q["code"] == "umol/L" and q["unit"] == "µmol/L" for q in quantities)


def test_several_cards_give_several_coverages_with_their_validity() -> None:
    tables = one_episode(
        MA_THE_BHYT="DN4790123456789;7912345678",
        GT_THE_TU="20250101;20240101",
        GT_THE_DEN="20251231;20241231",
    )
    coverages = resources(bundles(submission(FACILITY, [tables]))[0], "Coverage")
    assert [(c["identifier"][0]["system"], c["subscriberId"], c["period"]) for c in coverages] == [
        (BHYT_SYSTEM, "DN4790123456789", {"start": "2025-01-01", "end": "2025-12-31"}),
        (BHYT_SYSTEM, "7912345678", {"start": "2024-01-01", "end": "2024-12-31"}),
    ]


def test_missing_required_field_is_a_rejection_naming_table_record_and_field() -> None:
    tables = one_episode(HO_TEN="")
    tables["XML2"][0]["MA_THUOC"] = ""
    (output,) = bundles(submission(FACILITY, [tables]))
    assert isinstance(output, Rejection)
    ma_lk = tables["XML1"][0]["MA_LK"]
    assert f"XML1 MA_LK={ma_lk}: HO_TEN is required" in output.reason
    assert f"XML2 MA_LK={ma_lk} STT=1: MA_THUOC is required" in output.reason
    assert f"HOSO 1 MA_LK={ma_lk}" in output.source


def test_required_flags_come_from_the_field_tables() -> None:
    assert "MA_BENH_CHINH" in fields.required("XML1")
    assert "SO_CCCD" not in fields.required("XML1")
    assert "TEN_CHI_SO" in fields.required("XML4")


def test_a_bad_date_is_a_rejection_naming_the_field() -> None:
    (output,) = bundles(submission(FACILITY, [one_episode(NGAY_VAO="20251345")]))
    assert isinstance(output, Rejection)
    assert "NGAY_VAO '20251345' is not a date" in output.reason


def test_4210_field_names_are_accepted() -> None:
    tables = episode(SEED, 1, FACILITY)
    new = tables["XML1"][0]
    only_130 = {f.name for f in fields.tables()["XML1"]} - fields.FIELDS_4210["XML1"]
    old = {k: v for k, v in new.items() if k not in only_130}
    renames = {v: k for k, v in fields.NAMES_4210["XML1"].items()}
    tables["XML1"] = [{renames.get(k, k): v for k, v in old.items()}]
    assert "MA_THE" in tables["XML1"][0] and "MA_BENH" in tables["XML1"][0]
    (output,) = bundles(submission(FACILITY, [tables]))
    cards = [c["subscriberId"] for c in resources(output, "Coverage")]
    assert cards == new["MA_THE_BHYT"].split(";")
    condition = resources(output, "Condition")[0]
    assert condition["code"]["coding"][0]["code"] == new["MA_BENH_CHINH"]


def test_broken_base64_or_xml_is_a_rejection_and_the_next_hoso_still_goes() -> None:
    good = hoso_xml(episode_files(episode(SEED, 2, FACILITY)))
    broken_base64 = b"<HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>@@not base64!"
    broken_base64 += b"</NOIDUNGFILE></FILEHOSO></HOSO>"
    not_xml = base64.b64encode(b"<TONG_HOP><MA_LK>1</TONG_HOP>")
    broken_xml = b"<HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>" + not_xml
    broken_xml += b"</NOIDUNGFILE></FILEHOSO></HOSO>"
    out = io.BytesIO()
    write(out, FACILITY, 3, [broken_base64, broken_xml, good])
    first, second, third = bundles(out.getvalue())
    assert isinstance(first, Rejection) and "XML1: NOIDUNGFILE is not valid base64" in first.reason
    assert isinstance(second, Rejection) and "not well-formed XML" in second.reason
    assert not isinstance(third, Rejection)


def test_a_file_that_is_not_xml130_is_one_rejection() -> None:
    (output,) = bundles(b"this is not XML")
    assert isinstance(output, Rejection) and "not an XML130 file" in output.reason
    (output,) = bundles(b"<Bundle/>")
    assert isinstance(output, Rejection) and "GIAMDINHHS" in output.reason


def test_the_facility_comes_from_the_envelope_unless_given() -> None:
    data = submission(FACILITY, episodes(1, SEED))
    (found,) = bundles(data)
    (given,) = bundles(data, Facility("01999", "Bệnh viện Thử"))
    assert resources(found, "Organization")[0]["identifier"][0]["value"] == FACILITY
    assert resources(given, "Organization")[0] == Facility("01999", "Bệnh viện Thử").organization()


def test_a_large_file_is_read_hoso_by_hoso_in_bounded_memory(tmp_path: Path) -> None:
    # Tracing every allocation slows parsing about eightfold: the HOSO are summaries only.
    hoso = hoso_xml(episode_files({"XML1": episode(SEED, 3, FACILITY)["XML1"]}))
    path = tmp_path / "large.xml"
    with path.open("wb") as out:
        write(out, FACILITY, 2000, (hoso for _ in range(2000)))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for output in parse(path) if not isinstance(output, Rejection))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 2000
    assert peak < 1_000_000 < size / 5, f"peak {peak} bytes for a {size}-byte file"


def test_a_generated_file_of_a_thousand_episodes_parses_whole(tmp_path: Path) -> None:
    # How fast: loadtests/bench_adapters.py measures it, not a timed test.
    path = tmp_path / "large.xml"
    with path.open("wb") as out:
        generate(out, 1000, SEED)
    assert sum(1 for output in parse(path) if not isinstance(output, Rejection)) == 1000


def test_doctors_are_practitioners_by_practising_certificate() -> None:
    tables = one_episode()
    tables["XML3"][0]["MA_BAC_SI"] = "000111/HNO-CCHN;000222/HNO-CCHN"
    (output,) = bundles(submission(FACILITY, [tables]))
    assert not isinstance(output, Rejection)
    entries = {e["fullUrl"]: e for e in output["entry"]}
    doctors = {
        url: e["resource"]["identifier"][0]
        for url, e in entries.items()
        if e["resource"]["resourceType"] == "Practitioner"
    }
    assert {i["system"] for i in doctors.values()} == {CCHN_SYSTEM}
    named = {i["value"] for i in doctors.values()}
    assert len(named) == len(doctors)  # each doctor once, however many lines name them
    assert {"000111/HNO-CCHN", "000222/HNO-CCHN", tables["XML2"][0]["MA_BAC_SI"]} <= named
    for url in doctors:  # created only if new: a claim line must not erase a doctor's name
        assert entries[url]["request"]["method"] == "POST"
        assert entries[url]["request"]["ifNoneExist"].startswith("identifier=")
    (request, *_) = resources(output, "MedicationRequest")
    assert doctors[request["requester"]["reference"]]["value"] == tables["XML2"][0]["MA_BAC_SI"]
    (procedure, *_) = resources(output, "Procedure")
    assert [doctors[p["actor"]["reference"]]["value"] for p in procedure["performer"]] == [
        "000111/HNO-CCHN",
        "000222/HNO-CCHN",
    ]
    reader = tables["XML4"][0]["MA_BS_DOC_KQ"]
    (report, *_) = resources(output, "DiagnosticReport")
    assert [doctors[r["reference"]]["value"] for r in report["resultsInterpreter"]] == [reader]
    (encounter,) = resources(output, "Encounter")
    assert {p["individual"]["reference"] for p in encounter["participant"]} == set(doctors)
    (note, *_) = resources(output, "DocumentReference")
    assert doctors[note["author"][0]["reference"]]["value"] == tables["XML5"][0]["NGUOI_THUC_HIEN"]


def test_cell_counts_in_g_per_litre_are_not_grams() -> None:
    tables = one_episode()
    row = dict(tables["XML4"][0])
    tables["XML4"] = [
        row | {"STT": "1", "GIA_TRI": "7.5", "DON_VI_DO": "G/L", "MA_CHI_SO": "WBC"},
        row | {"STT": "2", "GIA_TRI": "135", "DON_VI_DO": "g/L", "MA_CHI_SO": "HGB"},
        row | {"STT": "3", "GIA_TRI": "NaN", "DON_VI_DO": "g/L", "MA_CHI_SO": "X"},
    ]
    (output,) = bundles(submission(FACILITY, [tables]))
    wbc, hgb, odd = resources(output, "Observation")
    assert wbc["valueQuantity"]["code"] == "10*9/L" and wbc["valueQuantity"]["unit"] == "G/L"
    assert hgb["valueQuantity"]["code"] == "g/L"
    assert "valueQuantity" not in odd and odd["valueString"] == "NaN g/L"


def test_a_birth_date_with_an_unknown_day_or_month_is_as_precise_as_known() -> None:
    for written, expected in (("197500000000", "1975"), ("197506000000", "1975-06")):
        (output,) = bundles(submission(FACILITY, [one_episode(NGAY_SINH=written)]))
        assert resources(output, "Patient")[0]["birthDate"] == expected
