"""Generate deterministic synthetic FHIR R4 transaction Bundles of Vietnamese hospital patients."""

import argparse
import json
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from adapters.base import (
    ACT_CODE_SYSTEM,
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    FACILITY_SYSTEM,
    ICD10_SYSTEM,
    ID_TYPE_SYSTEM,
    LOINC_SYSTEM,
    TZ_VN,
    UCUM_SYSTEM,
    Resource,
)

ENCOUNTER_SYSTEM = "https://moh.gov.vn/fhir/sid/encounter"
CONDITION_SYSTEM = "https://moh.gov.vn/fhir/sid/condition"
OBSERVATION_SYSTEM = "https://moh.gov.vn/fhir/sid/observation"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ehrhub.invalid/adapters/simulate")


@dataclass(frozen=True)
class Province:
    """A province: its citizen-ID code (3 digits), its insurance code (2 digits), name, streets."""

    cccd_code: str
    bhyt_code: str
    name: str
    streets: tuple[str, ...]


PROVINCES = (
    Province("001", "01", "Hà Nội", ("phố Huế", "Láng Hạ", "Kim Mã", "Giải Phóng")),
    Province("031", "31", "Hải Phòng", ("Lạch Tray", "Trần Phú", "Lê Hồng Phong")),
    Province("046", "46", "Huế", ("Lê Lợi", "Hùng Vương", "Nguyễn Huệ")),
    Province("048", "48", "Đà Nẵng", ("Bạch Đằng", "Nguyễn Văn Linh", "Điện Biên Phủ")),
    Province("079", "79", "TP Hồ Chí Minh", ("Nguyễn Thị Minh Khai", "Lê Lợi", "Võ Văn Tần")),
    Province("092", "92", "Cần Thơ", ("Ninh Kiều", "Trần Hưng Đạo", "Mậu Thân")),
)
FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý",
)  # fmt: skip
MIDDLE_NAMES = {"male": ("Văn", "Hữu", "Đức", "Minh", "Quang"), "female": ("Thị", "Ngọc", "Thu")}
GIVEN_NAMES = {
    "male": ("An", "Bình", "Cường", "Dũng", "Hùng", "Khoa", "Long", "Nam", "Phúc", "Sơn", "Tuấn"),
    "female": ("Anh", "Chi", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Thảo", "Yến"),
}
# Insurance-card object codes: employees, civil servants, pensioners, children under six,
# poor households, household members.
BHYT_OBJECT_CODES = ("DN", "HC", "HT", "TE", "HN", "GD")
CONDITIONS = (
    ("E11", "Bệnh đái tháo đường type 2"),
    ("I10", "Tăng huyết áp"),
    ("E78.5", "Tăng lipid máu, không đặc hiệu"),
    ("J06.9", "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"),
    ("J18.9", "Viêm phổi, không đặc hiệu"),
    ("K29.7", "Viêm dạ dày, không đặc hiệu"),
    ("N39.0", "Nhiễm khuẩn đường tiết niệu, vị trí không xác định"),
)


@dataclass(frozen=True)
class Measure:
    """A LOINC observation kind with its UCUM unit and plausible range."""

    loinc: str
    display: str
    text: str
    unit: str
    low: float
    high: float
    category: str


VITAL, LAB = "vital-signs", "laboratory"
MEASURES = (
    Measure("8867-4", "Heart rate", "Nhịp tim", "/min", 58, 110, VITAL),
    Measure("8480-6", "Systolic blood pressure", "Huyết áp tâm thu", "mm[Hg]", 100, 170, VITAL),
    Measure("8462-4", "Diastolic blood pressure", "Huyết áp tâm trương", "mm[Hg]", 60, 100, VITAL),
    Measure("8310-5", "Body temperature", "Nhiệt độ cơ thể", "Cel", 36.2, 39.5, VITAL),
    Measure("29463-7", "Body weight", "Cân nặng", "kg", 40, 85, VITAL),
    Measure(
        "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "Đường huyết", "mg/dL", 70, 250, LAB
    ),
    Measure("718-7", "Hemoglobin [Mass/volume] in Blood", "Huyết sắc tố", "g/dL", 9.5, 16.5, LAB),
)
FIRST_VISIT = date(2024, 1, 1)


class _Ids:
    """Mint deterministic urn:uuid fullUrls and identifier values for one patient's bundle."""

    def __init__(self, seed: int, index: int) -> None:
        self._prefix = f"{seed}/{index}"

    def uuid(self, name: str) -> uuid.UUID:
        """Return the uuid5 of a name within this bundle."""
        return uuid.uuid5(UUID_NAMESPACE, f"{self._prefix}/{name}")

    def urn(self, name: str) -> str:
        """Return the urn:uuid fullUrl of a name within this bundle."""
        return self.uuid(name).urn

    def value(self, facility_code: str, name: str) -> str:
        """Return an identifier value unique to a name, prefixed with the facility code."""
        return f"{facility_code}.{self.uuid(f'identifier/{name}').hex[:16].upper()}"


def citizen_id(rng: random.Random, province: Province, gender: str, birth_year: int) -> str:
    """Return a 12-digit citizen ID: province, century and sex, birth year, 6 random digits."""
    century_sex = (birth_year // 100 - 19) * 2 + (gender == "female")
    return f"{province.cccd_code}{century_sex}{birth_year % 100:02d}{rng.randrange(10**6):06d}"


def bhyt_card(rng: random.Random, province: Province) -> str:
    """Return a 15-character insurance card number: object, benefit level, province, BHXH number."""
    obj = rng.choice(BHYT_OBJECT_CODES)
    return f"{obj}{rng.randint(1, 5)}{province.bhyt_code}{rng.randrange(10**10):010d}"


def identifier(system: str, value: str) -> Resource:
    """Return a FHIR Identifier."""
    return {"system": system, "value": value}


def bundle_entry(full_url: str, resource: Resource) -> Resource:
    """Return a transaction entry that creates the resource unless its first identifier exists."""
    ident = resource["identifier"][0]
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
        },
    }


def organization(province: Province, facility_code: str) -> Resource:
    """Return the facility as an Organization."""
    return {
        "resourceType": "Organization",
        "identifier": [identifier(FACILITY_SYSTEM, facility_code)],
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                        "display": "Healthcare Provider",
                    }
                ]
            }
        ],
        "name": f"Bệnh viện Đa khoa Mô phỏng {province.name} số {int(facility_code[2:])}",
        "address": [{"city": province.name, "country": "VN"}],
    }


def patient(rng: random.Random, province: Province, org_urn: str) -> Resource:
    """Return a Patient with citizen ID, insurance card, Vietnamese name and address."""
    gender = rng.choice(("male", "female"))
    born = date(rng.randint(1940, 2023), rng.randint(1, 12), rng.randint(1, 28))
    family = rng.choice(FAMILY_NAMES)
    given = [rng.choice(MIDDLE_NAMES[gender]), rng.choice(GIVEN_NAMES[gender])]
    name = {"family": family, "given": given}
    street = f"Số {rng.randint(1, 300)} {rng.choice(province.streets)}"
    cccd = identifier(CCCD_SYSTEM, citizen_id(rng, province, gender, born.year))
    cccd["type"] = {"coding": [{"system": ID_TYPE_SYSTEM, "code": "NI"}]}
    bhyt = identifier(BHYT_SYSTEM, bhyt_card(rng, province))
    bhyt["type"] = {"coding": [{"system": ID_TYPE_SYSTEM, "code": "SN"}]}
    return {
        "resourceType": "Patient",
        "identifier": [cccd, bhyt],
        "active": True,
        "name": [{"use": "official", "text": " ".join([family, *given]), **name}],
        "gender": gender,
        "birthDate": born.isoformat(),
        "address": [
            {
                "use": "home",
                "text": f"{street}, {province.name}, Việt Nam",
                "line": [street],
                "city": province.name,
                "country": "VN",
            }
        ],
        "managingOrganization": {"reference": org_urn},
    }


def encounter(
    rng: random.Random, start: datetime, inpatient: bool, refs: dict[str, str], value: str
) -> Resource:
    """Return a finished ambulatory or inpatient Encounter starting at start."""
    length = timedelta(days=rng.randint(2, 9)) if inpatient else timedelta(hours=rng.randint(1, 4))
    code, display = ("IMP", "inpatient encounter") if inpatient else ("AMB", "ambulatory")
    return {
        "resourceType": "Encounter",
        "identifier": [identifier(ENCOUNTER_SYSTEM, value)],
        "status": "finished",
        "class": {"system": ACT_CODE_SYSTEM, "code": code, "display": display},
        "subject": {"reference": refs["patient"]},
        "period": {"start": start.isoformat(), "end": (start + length).isoformat()},
        "serviceProvider": {"reference": refs["organization"]},
    }


def condition(
    code: str, text: str, recorded: datetime, refs: dict[str, str], value: str
) -> Resource:
    """Return an encounter diagnosis coded in ICD-10."""
    concept = "http://terminology.hl7.org/CodeSystem/condition-"
    return {
        "resourceType": "Condition",
        "identifier": [identifier(CONDITION_SYSTEM, value)],
        "clinicalStatus": {"coding": [{"system": f"{concept}clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": f"{concept}ver-status", "code": "confirmed"}]},
        "category": [{"coding": [{"system": f"{concept}category", "code": "encounter-diagnosis"}]}],
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": code, "display": text}], "text": text},
        "subject": {"reference": refs["patient"]},
        "encounter": {"reference": refs["encounter"]},
        "recordedDate": recorded.isoformat(),
    }


def observation(
    rng: random.Random, measure: Measure, taken: datetime, refs: dict[str, str], value: str
) -> Resource:
    """Return a final Observation of a LOINC measure with a UCUM quantity."""
    category = "http://terminology.hl7.org/CodeSystem/observation-category"
    return {
        "resourceType": "Observation",
        "identifier": [identifier(OBSERVATION_SYSTEM, value)],
        "status": "final",
        "category": [{"coding": [{"system": category, "code": measure.category}]}],
        "code": {
            "coding": [{"system": LOINC_SYSTEM, "code": measure.loinc, "display": measure.display}],
            "text": measure.text,
        },
        "subject": {"reference": refs["patient"]},
        "encounter": {"reference": refs["encounter"]},
        "effectiveDateTime": taken.isoformat(),
        "valueQuantity": {
            "value": round(rng.uniform(measure.low, measure.high), 1),
            "unit": measure.unit,
            "system": UCUM_SYSTEM,
            "code": measure.unit,
        },
    }


def visit_entries(
    rng: random.Random, ids: _Ids, number: int, refs: dict[str, str], facility_code: str
) -> list[Resource]:
    """Return the entries of one visit: its Encounter, diagnoses and observations."""
    name = f"encounter/{number}"
    refs = {**refs, "encounter": ids.urn(name)}
    day = FIRST_VISIT + timedelta(days=rng.randrange(700))
    start = datetime(day.year, day.month, day.day, rng.randint(7, 16), 0, tzinfo=TZ_VN)
    inpatient = rng.random() < 0.3
    entries = [
        bundle_entry(
            refs["encounter"],
            encounter(rng, start, inpatient, refs, ids.value(facility_code, name)),
        )
    ]
    for n, (code, text) in enumerate(rng.sample(CONDITIONS, rng.randint(1, 2))):
        item = f"{name}/condition/{n}"
        res = condition(code, text, start, refs, ids.value(facility_code, item))
        entries.append(bundle_entry(ids.urn(item), res))
    for n, measure in enumerate(rng.sample(MEASURES, rng.randint(3, len(MEASURES)))):
        item = f"{name}/observation/{n}"
        taken = start + timedelta(minutes=rng.randint(5, 55))
        res = observation(rng, measure, taken, refs, ids.value(facility_code, item))
        entries.append(bundle_entry(ids.urn(item), res))
    return entries


def patient_bundle(seed: int, index: int) -> Resource:
    """Return the transaction Bundle of one patient's visits to one facility."""
    # A string seed is hashed with SHA-512, so the output does not depend on PYTHONHASHSEED.
    rng = random.Random(f"ehrhub-simulate/{seed}/{index}")
    ids = _Ids(seed, index)
    province = rng.choice(PROVINCES)
    facility_code = f"{province.bhyt_code}{rng.randint(1, 12):03d}"
    refs = {"organization": ids.urn("organization"), "patient": ids.urn("patient")}
    entries = [
        bundle_entry(refs["organization"], organization(province, facility_code)),
        bundle_entry(refs["patient"], patient(rng, province, refs["organization"])),
    ]
    for number in range(rng.randint(1, 3)):
        entries += visit_entries(rng, ids, number, refs, facility_code)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def sample_bundles(n_patients: int = 5, seed: int = 1) -> list[Resource]:
    """Return one deterministic transaction Bundle per synthetic patient."""
    return [patient_bundle(seed, index) for index in range(n_patients)]


def main(argv: list[str] | None = None) -> None:
    """Write sample bundles as JSON files, one per patient."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--patients", type=int, default=5, help="number of patients (bundles)")
    parser.add_argument("--seed", type=int, default=1, help="seed: the same seed, the same data")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the bundles to")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for index, bundle in enumerate(sample_bundles(args.patients, args.seed)):
        path = args.out / f"patient-{args.seed}-{index:04d}.json"
        path.write_text(json.dumps(bundle, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.patients} bundles to {args.out}")


if __name__ == "__main__":
    main()
