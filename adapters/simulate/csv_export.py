"""A simulated private clinic's HIS export: its visits as the four CSV files of the worked
example in adapters/csv/example (patients, visits, diagnoses, lab results), with its mapping.

The files are written as that HIS writes them: UTF-8 with a byte-order mark, `;` between
cells, CRLF line ends, dates dd/mm/yyyy, a decimal comma, and text with commas quoted.
"""

import shutil
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from adapters.simulate.population import Person, Visit

MAPPING = Path(__file__).parents[1] / "csv" / "example" / "mapping.toml"
BENH_NHAN = ("MA_BN", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "SO_CCCD", "DIEN_THOAI", "DIA_CHI")
LUOT_KHAM = ("MA_LK", "MA_BN", "NGAY_VAO", "NGAY_RA", "LOAI_KCB", "KHOA")
CHAN_DOAN = ("MA_LK", "MA_BN", "STT", "MA_ICD", "TEN_BENH", "LOAI")
XET_NGHIEM = ("MA_LK", "STT", "MA_XN", "TEN_XN", "KET_QUA", "DON_VI", "CSBT", "NGAY_KQ")
FILES = {
    "benh_nhan.csv": BENH_NHAN,
    "luot_kham.csv": LUOT_KHAM,
    "chan_doan.csv": CHAN_DOAN,
    "xet_nghiem.csv": XET_NGHIEM,
}
DELIMITER = ";"
LINE_END = "\r\n"
# The HIS quotes text with a comma between words (addresses, diagnoses), not a decimal comma.
QUOTED = (DELIMITER, '"', "\r", "\n", ", ")
DATE, DATE_TIME = "%d/%m/%Y", "%d/%m/%Y %H:%M"
GIOI_TINH = {"male": "Nam", "female": "Nữ"}
RESULTS_READY = timedelta(minutes=90)


def cell(value: str) -> str:
    """Return a cell as the HIS writes it, quoted when it holds a `;`, a quote, a newline or
    a comma between words."""
    if any(mark in value for mark in QUOTED):
        return '"' + value.replace('"', '""') + '"'
    return value


def line(cells: Sequence[str]) -> str:
    """Return one CSV line."""
    return DELIMITER.join(map(cell, cells)) + LINE_END


def decimal(value: float) -> str:
    """Return a number with a decimal comma: 84,1."""
    return f"{value:g}".replace(".", ",")


def local(moment: datetime) -> str:
    """Return a date and time as the HIS writes it: 04/03/2025 08:13."""
    return moment.strftime(DATE_TIME)


def benh_nhan(person: Person, mrn: str) -> list[str]:
    """Return a person's row of benh_nhan.csv."""
    return [
        mrn,
        person.full_name,
        person.birth.strftime(DATE),
        GIOI_TINH[person.gender],
        person.cccd,
        person.phone,
        person.address,
    ]


def luot_kham(visit: Visit, mrn: str) -> list[str]:
    """Return a visit's row of luot_kham.csv."""
    kind = "Nội trú" if visit.inpatient else "Ngoại trú"
    return [visit.number, mrn, local(visit.start), local(visit.end), kind, visit.department]


def chan_doan(visit: Visit, mrn: str) -> list[list[str]]:
    """Return a visit's rows of chan_doan.csv, the main diagnosis first."""
    return [
        [visit.number, mrn, str(stt), code, name, "Chính" if stt == 1 else "Kèm theo"]
        for stt, (code, name) in enumerate(visit.diagnoses, 1)
    ]


def xet_nghiem(visit: Visit) -> list[list[str]]:
    """Return a visit's rows of xet_nghiem.csv: the result with the unit and range as printed."""
    ready = local(visit.start + RESULTS_READY)
    return [
        [visit.number, str(stt), lab.loinc, lab.name, decimal(value), lab.unit, lab.normal, ready]
        for stt, (lab, value) in enumerate(visit.labs, 1)
    ]


def write_csv(folder: Path, visits: Iterable[Visit]) -> int:
    """Write visits as a HIS CSV export with its mapping.toml; return the number of patients."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MAPPING, folder / MAPPING.name)
    seen: set[str] = set()
    with ExitStack() as stack:
        files: dict[str, TextIO] = {}
        for name, header in FILES.items():
            out = stack.enter_context((folder / name).open("w", encoding="utf-8-sig", newline=""))
            out.write(line(header))
            files[name] = out
        for visit in visits:
            mrn = visit.person.mrn(visit.facility.code)
            if mrn not in seen:
                seen.add(mrn)
                files["benh_nhan.csv"].write(line(benh_nhan(visit.person, mrn)))
            files["luot_kham.csv"].write(line(luot_kham(visit, mrn)))
            files["chan_doan.csv"].writelines(map(line, chan_doan(visit, mrn)))
            files["xet_nghiem.csv"].writelines(map(line, xet_nghiem(visit)))
    return len(seen)
