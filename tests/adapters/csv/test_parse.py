"""Rows the mapping cannot take: rejected by file, line and column; mapping files checked."""

import shutil
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Facility, Rejection
from adapters.csv import MappingFileError, parse
from adapters.csv.mapping import from_dict

EXAMPLE = Path(__file__).parents[3] / "adapters" / "csv" / "example"
MAPPING = EXAMPLE / "mapping.toml"
FACILITY = Facility("01804")


def export(tmp_path: Path, **appended: str) -> Path:
    """Return a copy of the worked example with lines appended to some of its files."""
    folder = tmp_path / "export"
    shutil.copytree(EXAMPLE, folder)
    for name, lines in appended.items():
        with (folder / f"{name}.csv").open("a", encoding="utf-8") as f:
            f.write(lines)
    return folder


def rejections(folder: Path) -> dict[str, str]:
    """Return the rejections of an export, reason by where."""
    found = [o for o in parse(folder, MAPPING, FACILITY) if isinstance(o, Rejection)]
    return {r.source: r.reason for r in found}


def test_bad_rows_are_rejected_naming_file_line_and_column(tmp_path: Path) -> None:
    folder = export(
        tmp_path,
        benh_nhan="BN9001;Lý Văn Tám;31/02/1980;Nam;;;\n"
        "BN9002;Mai Thị Hoa;01/01/1990;Nữ giới;;;\n"
        "BN9003;Cao Văn Dũng;02/02/1975;Nam;;;\n",
        luot_kham="LK9001;BN9001;01/04/2025 08:00;;Ngoại trú;\n"
        "LK9003;BN9003;01/04/2025 08:00;;Khám sức khỏe;\n"
        "LK9004;BN9999;01/04/2025 08:00;;Ngoại trú;\n",
        xet_nghiem="LK9404;1;2345-7;Glucose máu;5,1;mmol/L;;\n"
        "LK202500001;9;2345-7;Glucose máu;cao;mmol/L;;\n",
    )
    found = rejections(folder)
    assert found == {
        "benh_nhan.csv line 12": "column NGAY_SINH: '31/02/1980' is not a date written %d/%m/%Y",
        "luot_kham.csv line 16": "its patient (benh_nhan.csv line 12) was rejected",
        "benh_nhan.csv line 13": (
            "column GIOI_TINH: 'Nữ giới' is not one of the codes mapped (Nam, Nữ, Khác)"
        ),
        "luot_kham.csv line 17": (
            "column LOAI_KCB: 'Khám sức khỏe' is not one of the codes mapped "
            "(Ngoại trú, Nội trú, Cấp cứu)"
        ),
        "luot_kham.csv line 18": "column MA_BN: no patient with key 'BN9999' in benh_nhan.csv",
        "xet_nghiem.csv line 37": "column MA_LK: no row of luot_kham has the key 'LK9404'",
        "xet_nghiem.csv line 38": "column KET_QUA: 'cao' is not a number",
    }


def test_the_other_rows_of_a_patient_still_go(tmp_path: Path) -> None:
    folder = export(tmp_path, xet_nghiem="LK202500001;9;2345-7;Glucose máu;;mmol/L;;\n")
    outputs = list(parse(folder, MAPPING, FACILITY))
    (rejected,) = [o for o in outputs if isinstance(o, Rejection)]
    assert rejected.reason == "column KET_QUA: is empty, but the mapping requires it"
    first = next(o for o in outputs if not isinstance(o, Rejection))
    types = [e["resource"]["resourceType"] for e in first["entry"]]
    assert types.count("Observation") == 5  # LK202500001 and 00002's results, not the bad one


def test_unsorted_files_group_rows_by_patient(tmp_path: Path) -> None:
    folder = export(tmp_path)
    path = folder / "xet_nghiem.csv"
    header, *lines = path.read_text("utf-8-sig").splitlines()
    path.write_text("\n".join([header, *reversed(lines)]) + "\n", encoding="utf-8")

    def entries(source: Path) -> list[list[Any]]:
        found = [o for o in parse(source, MAPPING, FACILITY) if not isinstance(o, Rejection)]
        return [sorted(b["entry"], key=lambda e: e["fullUrl"]) for b in found]

    assert entries(folder) == entries(EXAMPLE)


def test_a_missing_file_is_one_rejection(tmp_path: Path) -> None:
    folder = export(tmp_path)
    (folder / "chan_doan.csv").unlink()
    (found,) = parse(folder, MAPPING, FACILITY)
    assert isinstance(found, Rejection) and "chan_doan.csv" in found.reason


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({}, "no [tables.NAME] section"),
        ({"p": {"file": "p.csv", "resource": "Patient", "kind": "mrn"}}, "`key` is required"),
        (
            {
                "p": {
                    "file": "p.csv",
                    "resource": "Patient",
                    "key": "K",
                    "kind": "mrn",
                    "columns": {"A": "name[x].text"},
                }
            },
            "[tables.p] columns.A: 'name[x].text' is not an element path",
        ),
        (
            {
                "p": {
                    "file": "p.csv",
                    "resource": "Patient",
                    "key": "K",
                    "kind": "mrn",
                    "columns": {"A": {"element": "birthDate", "as": "ngay"}},
                }
            },
            "as = 'ngay' is not one of text, date, number, name",
        ),
        (
            {
                "p": {"file": "p.csv", "resource": "Patient", "key": "K", "kind": "mrn"},
                "e": {
                    "file": "e.csv",
                    "resource": "Encounter",
                    "key": "L",
                    "kind": "visit",
                    "links": {"subject": {"table": "x", "column": "K"}},
                },
            },
            "table 'x' must come earlier",
        ),
        (
            {
                "p": {"file": "p.csv", "resource": "Patient", "key": "K", "kind": "mrn"},
                "e": {"file": "e.csv", "resource": "Encounter", "key": "L", "kind": "visit"},
            },
            "[tables.e]: no link leads to [tables.p]",
        ),
    ],
)
def test_a_mapping_file_at_fault_says_where(tables: dict[str, object], message: str) -> None:
    with pytest.raises(MappingFileError) as error:
        from_dict({"tables": tables})
    assert message in str(error.value)
