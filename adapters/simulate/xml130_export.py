"""A simulated facility's insurance-claim submission: its visits as an XML130 file (GIAMDINHHS)."""

import random
from collections.abc import Sequence
from pathlib import Path

from adapters.simulate.population import Person, Visit
from adapters.xml130 import catalog
from adapters.xml130.envelope import Record
from adapters.xml130.generate import Stay, episode_files, hoso_xml, stay_tables, write


def patient_fields(person: Person, facility_code: str, rng: random.Random) -> Record:
    """Return the patient part of XML1 for a person at a facility."""
    province = person.province.bhyt_code
    return {
        "MA_BN": person.mrn(facility_code),
        "HO_TEN": person.full_name,
        "SO_CCCD": person.cccd,
        "NGAY_SINH": person.birth.strftime("%Y%m%d") + "0000",
        "GIOI_TINH": "1" if person.gender == "male" else "2",
        "MA_QUOCTICH": "000",
        "MA_DANTOC": rng.choice(catalog.ETHNICITIES),
        "MA_NGHE_NGHIEP": rng.choice(catalog.JOBS),
        "DIA_CHI": person.address,
        "MATINH_CU_TRU": province,
        "MAHUYEN_CU_TRU": f"{rng.randint(1, 999):03d}",
        "MAXA_CU_TRU": f"{rng.randint(1, 29999):05d}",
        "DIEN_THOAI": person.phone,
        "MA_THE_BHYT": person.card,
        "MA_DKBD": f"{province}{rng.randint(1, 99):03d}",
        "GT_THE_TU": f"{person.birth.year if person.birth.year > 2020 else 2020}0101",
        "GT_THE_DEN": "20271231",
        "CAN_NANG": f"{rng.uniform(40, 80):.1f}".replace(".", ","),
    }


def visit_hoso(visit: Visit, index: int) -> bytes:
    """Return one visit as a HOSO: its XML1 to XML5 (and XML7 after a stay) tables."""
    code = visit.facility.code
    rng = random.Random(f"ehrhub-simulate/xml130/{visit.number}")
    # XML130 writes local time without an offset.
    start, end = visit.start.replace(tzinfo=None), visit.end.replace(tzinfo=None)
    department = catalog.DEPARTMENTS[hash_index(visit.department, len(catalog.DEPARTMENTS))]
    stay = Stay(
        ma_lk=visit.number,
        facility_code=code,
        index=index,
        start=start,
        end=end,
        inpatient=visit.inpatient,
        diagnoses=list(visit.diagnoses),
        department=department,
        doctor=visit.doctor[0],
    )
    tables = stay_tables(rng, stay, lambda: patient_fields(visit.person, code, rng))
    return hoso_xml(episode_files(tables))


def hash_index(text: str, size: int) -> int:
    """Return a stable index below size for a text (Python's hash() changes between runs)."""
    return sum(text.encode()) % size


def write_xml130(path: Path, facility_code: str, visits: Sequence[Visit]) -> int:
    """Write a facility's visits as one XML130 submission file; return the number of HOSO."""
    with path.open("wb") as out:
        write(out, facility_code, len(visits), (visit_hoso(v, i) for i, v in enumerate(visits)))
    return len(visits)
