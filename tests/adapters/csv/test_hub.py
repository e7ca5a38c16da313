"""The worked CSV example sent to the real hub: accepted whole, searchable, idempotent."""

import csv
import shutil
from pathlib import Path
from typing import Any

from support import FacilityClients, find_resources, transact

from adapters.base import Facility, Rejection
from adapters.csv import parse
from adapters.csv.mapping import load
from adapters.csv.rows import read

EXAMPLE = Path(__file__).parents[3] / "adapters" / "csv" / "example"
MAPPING = EXAMPLE / "mapping.toml"


def bundles(folder: Path, facility: Facility) -> list[dict[str, Any]]:
    """Return the Bundles of an export, failing on any rejection."""
    found = list(parse(folder, MAPPING, facility))
    assert not [o for o in found if isinstance(o, Rejection)], found
    return [o for o in found if not isinstance(o, Rejection)]


def table(name: str) -> list[dict[str, str]]:
    """Return the rows of one of the example's files."""
    return [row for _, row in read(EXAMPLE / name, load(MAPPING))]


async def test_the_worked_example_lands_in_the_hub(facility_client: FacilityClients) -> None:
    facility = Facility("01801", "Bệnh viện Đa khoa Minh An")
    client = await facility_client(facility.code)
    found = bundles(EXAMPLE, facility)
    assert len(found) == len(table("benh_nhan.csv")) == 10
    for bundle in found:
        await transact(client, bundle)
    mrn, visit = facility.system("mrn"), facility.system("visit")
    visits = table("luot_kham.csv")
    labs = table("xet_nghiem.csv")
    for row in table("benh_nhan.csv"):
        (patient,) = await find_resources(client, "Patient", identifier=f"{mrn}|{row['MA_BN']}")
        assert patient["name"][0]["text"] == row["HO_TEN"]
        assert patient["gender"] == {"Nam": "male", "Nữ": "female"}[row["GIOI_TINH"]]
        day, month, year = row["NGAY_SINH"].split("/")
        assert patient["birthDate"] == f"{year}-{month}-{day}"
        mine = [v for v in visits if v["MA_BN"] == row["MA_BN"]]
        encounters = await find_resources(client, "Encounter", subject=f"Patient/{patient['id']}")
        assert len(encounters) == len(mine)
        results = await find_resources(client, "Observation", subject=f"Patient/{patient['id']}")
        assert len(results) == len([r for r in labs if r["MA_LK"] in {v["MA_LK"] for v in mine}])
    first = visits[0]
    (encounter,) = await find_resources(client, "Encounter", identifier=f"{visit}|{first['MA_LK']}")
    conditions = await find_resources(client, "Condition", encounter=f"Encounter/{encounter['id']}")
    expected = [d for d in table("chan_doan.csv") if d["MA_LK"] == first["MA_LK"]]
    assert {c["code"]["coding"][0]["code"] for c in conditions} == {d["MA_ICD"] for d in expected}
    lab = next(r for r in labs if r["MA_LK"] == first["MA_LK"])
    key = f"{first['MA_LK']}.{lab['STT']}"
    (result,) = await find_resources(
        client, "Observation", identifier=f"{facility.system('lab-result')}|{key}"
    )
    assert result["valueQuantity"]["value"] == float(lab["KET_QUA"].replace(",", "."))
    assert result["encounter"]["reference"] == f"Encounter/{encounter['id']}"


async def test_sending_twice_creates_nothing_and_a_corrected_row_updates(
    facility_client: FacilityClients, tmp_path: Path
) -> None:
    facility = Facility("01802", "Bệnh viện Đa khoa Minh An")
    client = await facility_client(facility.code)
    for bundle in bundles(EXAMPLE, facility):
        await transact(client, bundle)
    for bundle in bundles(EXAMPLE, facility):
        statuses = await transact(client, bundle)
        assert not [s for s in statuses if s.startswith("201")], statuses
    mrn = facility.system("mrn")
    (patient,) = await find_resources(client, "Patient", identifier=f"{mrn}|BN000102")

    export = tmp_path / "export"
    shutil.copytree(EXAMPLE, export)
    patients = export / "benh_nhan.csv"
    patients.write_text(
        patients.read_text("utf-8-sig").replace("Trần Thị Bích Ngọc", "Trần Thị Bích Ngân"),
        encoding="utf-8-sig",
    )
    for bundle in bundles(export, facility):
        await transact(client, bundle)
    (updated,) = await find_resources(client, "Patient", identifier=f"{mrn}|BN000102")
    assert updated["id"] == patient["id"]
    assert updated["name"][0]["given"] == ["Thị", "Bích", "Ngân"]
    assert int(updated["meta"]["versionId"]) > int(patient["meta"]["versionId"])
    encounters = await find_resources(client, "Encounter", subject=f"Patient/{patient['id']}")
    assert len(encounters) == len([v for v in table("luot_kham.csv") if v["MA_BN"] == "BN000102"])


def test_a_comma_separated_export_without_bom_maps_the_same(tmp_path: Path) -> None:
    mapping = load(MAPPING)
    for name in ("benh_nhan.csv", "luot_kham.csv", "chan_doan.csv", "xet_nghiem.csv"):
        assert (EXAMPLE / name).read_bytes().startswith(b"\xef\xbb\xbf")  # the example: BOM, `;`
        rows = [row for _, row in read(EXAMPLE / name, mapping)]
        with (tmp_path / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=",")
            writer.writeheader()
            writer.writerows(rows)
    facility = Facility("01803")
    assert bundles(tmp_path, facility) == bundles(EXAMPLE, facility)
