"""One HOSO (one episode of care) to one transaction Bundle: XML1 (TONG_HOP) here, the
detail tables in `details`."""

from adapters.base import (
    ACT_CODE_SYSTEM,
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    ICD10_SYSTEM,
    Bundle,
    BundleBuilder,
    Facility,
    Rejection,
    Resource,
    identifier,
    identifier_query,
)
from adapters.xml130 import details, fields
from adapters.xml130.envelope import Hoso, Record
from adapters.xml130.values import (
    RecordError,
    birth_date,
    date_time,
    local_code,
    record_id,
    split,
    where,
)

GENDERS = {"1": "male", "2": "female", "3": "unknown"}
# MA_LOAI_KCB (visit type) -> v3 ActCode encounter class.
VISIT_CLASSES = {
    "01": ("AMB", "ambulatory"),
    "02": ("AMB", "ambulatory"),
    "03": ("IMP", "inpatient encounter"),
    "04": ("SS", "short stay"),
    "05": ("AMB", "ambulatory"),
    "06": ("OBSENC", "observation encounter"),
    "07": ("AMB", "ambulatory"),
    "08": ("AMB", "ambulatory"),
    "09": ("IMP", "inpatient encounter"),
}
# KET_QUA_DTRI (treatment result).
RESULTS = {
    "1": "Khỏi",
    "2": "Đỡ",
    "3": "Không thay đổi",
    "4": "Nặng hơn",
    "5": "Tử vong",
    "6": "Chưa xác định",
    "7": "Tử vong ngoại viện",
    "8": "Tử vong ngoại viện",
}
# MA_LOAI_RV (kind of discharge) -> HL7 discharge-disposition.
DISCHARGES = {"1": "home", "2": "other-hcf", "3": "aadvice", "4": "aadvice", "5": "oth"}
DISPOSITION_SYSTEM = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
CONDITION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-"
COMMUNE_EXTENSION = "https://moh.gov.vn/fhir/StructureDefinition/address-commune"
PAYOR = "Bảo hiểm xã hội Việt Nam"
TABLES = ("XML1", "XML2", "XML3", "XML4", "XML5", "XML7", "XML8")


def check(hoso: Hoso) -> tuple[dict[str, list[Record]], list[str]]:
    """Return the tables under QĐ 130 names and the required fields each record leaves empty."""
    tables: dict[str, list[Record]] = {}
    is_4210 = False
    for table, rows in hoso.tables.items():
        tables[table] = []
        for row in rows:
            renamed, old = fields.normalise(table, row)
            is_4210 = is_4210 or old
            tables[table].append(renamed)
    problems = [
        f"{where(table, row)}: {name} is required"
        for table, rows in tables.items()
        if table in TABLES
        for row in rows
        for name in fields.missing(table, row, is_4210)
    ]
    return tables, problems


def patient(xml1: Record, facility: Facility, org: str) -> Resource:
    """Return the Patient of TONG_HOP."""
    ids = [identifier(facility.system("mrn"), xml1["MA_BN"], "MR")]
    if xml1.get("SO_CCCD"):
        ids.insert(0, identifier(CCCD_SYSTEM, xml1["SO_CCCD"], "NI"))
    words = xml1["HO_TEN"].split()
    name: Resource = {"use": "official", "text": " ".join(words)}
    if len(words) > 1:
        name |= {"family": words[0], "given": words[1:]}
    found: Resource = {
        "resourceType": "Patient",
        "identifier": ids,
        "active": True,
        "name": [name],
        "gender": GENDERS.get(xml1["GIOI_TINH"], "unknown"),
        "birthDate": birth_date(xml1["NGAY_SINH"]),
        "managingOrganization": {"reference": org},
    }
    if xml1.get("DIEN_THOAI"):
        found["telecom"] = [{"system": "phone", "value": xml1["DIEN_THOAI"], "use": "mobile"}]
    if xml1.get("DIA_CHI"):
        # Province, district and commune codes of the residence, as the decision codes them.
        address: Resource = {"use": "home", "text": xml1["DIA_CHI"], "country": "VN"}
        if xml1.get("MATINH_CU_TRU"):
            address["state"] = xml1["MATINH_CU_TRU"]
        if xml1.get("MAHUYEN_CU_TRU"):
            address["district"] = xml1["MAHUYEN_CU_TRU"]
        if xml1.get("MAXA_CU_TRU"):
            # FHIR's Address has no commune; its code travels in an extension.
            address["extension"] = [{"url": COMMUNE_EXTENSION, "valueCode": xml1["MAXA_CU_TRU"]}]
        found["address"] = [address]
    return found


def coverages(xml1: Record, patient_url: str) -> list[Resource]:
    """Return one Coverage per insurance card of MA_THE_BHYT (cards separated by `;`)."""
    cards = split(xml1.get("MA_THE_BHYT", ""))
    starts, ends = split(xml1.get("GT_THE_TU", "")), split(xml1.get("GT_THE_DEN", ""))
    found = []
    for n, card in enumerate(cards):
        coverage: Resource = {
            "resourceType": "Coverage",
            "identifier": [identifier(BHYT_SYSTEM, card, "SN")],
            "status": "active",
            "subscriberId": card,
            "beneficiary": {"reference": patient_url},
            "payor": [{"display": PAYOR}],
        }
        period = {}
        if n < len(starts):
            period["start"] = date_time(starts[n][:8], "GT_THE_TU")
        if n < len(ends):
            period["end"] = date_time(ends[n][:8], "GT_THE_DEN")
        if period:
            coverage["period"] = period
        found.append(coverage)
    return found


def diagnosis_codes(xml1: Record) -> list[str]:
    """Return the main diagnosis code, then the secondary ones, each once."""
    codes = [xml1["MA_BENH_CHINH"], *split(xml1.get("MA_BENH_KT", ""))]
    return list(dict.fromkeys(c.strip() for c in codes if c.strip()))


def condition(
    xml1: Record, code: str, main: bool, refs: dict[str, str], ident: dict[str, str]
) -> Resource:
    """Return an encounter diagnosis in ICD-10."""
    cured = xml1.get("KET_QUA_DTRI") == "1"
    coding: Resource = {"system": ICD10_SYSTEM, "code": code}
    concept: Resource = {"coding": [coding]}
    if main and xml1.get("CHAN_DOAN_RV"):
        concept["text"] = xml1["CHAN_DOAN_RV"]
    return {
        "resourceType": "Condition",
        "identifier": [ident],
        "clinicalStatus": {
            "coding": [
                {"system": f"{CONDITION_SYSTEM}clinical", "code": "resolved" if cured else "active"}
            ]
        },
        "verificationStatus": {
            "coding": [{"system": f"{CONDITION_SYSTEM}ver-status", "code": "confirmed"}]
        },
        "category": [
            {"coding": [{"system": f"{CONDITION_SYSTEM}category", "code": "encounter-diagnosis"}]}
        ],
        "code": concept,
        "subject": {"reference": refs["patient"]},
        "encounter": {"reference": refs["encounter"]},
        "recordedDate": date_time(xml1["NGAY_RA"], "NGAY_RA"),
    }


def encounter(xml1: Record, facility: Facility, refs: dict[str, str]) -> Resource:
    """Return the Encounter of the episode, keyed by MA_LK."""
    visit = xml1.get("MA_LOAI_KCB", "")
    code, display = VISIT_CLASSES.get(visit, ("AMB", "ambulatory"))
    found: Resource = {
        "resourceType": "Encounter",
        "identifier": [identifier(facility.system("visit"), xml1["MA_LK"], "VN")],
        "status": "finished",
        "class": {"system": ACT_CODE_SYSTEM, "code": code, "display": display},
        "subject": {"reference": refs["patient"]},
        "period": {
            "start": date_time(xml1["NGAY_VAO"], "NGAY_VAO"),
            "end": date_time(xml1["NGAY_RA"], "NGAY_RA"),
        },
        "serviceProvider": {"reference": refs["organization"]},
    }
    if visit:
        found["type"] = [{"coding": [local_code("ma-loai-kcb", visit)]}]
    if xml1.get("MA_KHOA"):
        found["serviceType"] = {"coding": [local_code("ma-khoa", xml1["MA_KHOA"])]}
    if xml1.get("LY_DO_VV"):
        found["reasonCode"] = [{"text": xml1["LY_DO_VV"]}]
    outcome = []
    if xml1.get("MA_LOAI_RV") in DISCHARGES:
        death = xml1.get("KET_QUA_DTRI") in ("5", "7", "8")
        disposition = "exp" if death else DISCHARGES[xml1["MA_LOAI_RV"]]
        outcome.append({"system": DISPOSITION_SYSTEM, "code": disposition})
    result = xml1.get("KET_QUA_DTRI", "")
    if result:
        outcome.append(local_code("ket-qua-dtri", result, RESULTS.get(result, "")))
    if outcome:
        found["hospitalization"] = {"dischargeDisposition": {"coding": outcome}}
    return found


def episode(hoso: Hoso, tables: dict[str, list[Record]], facility: Facility) -> Bundle:
    """Return the Bundle of one checked HOSO."""
    xml1 = tables["XML1"][0]
    b = BundleBuilder(facility)
    refs = {"organization": b.organization()}
    mrn = facility.system("mrn")
    refs["patient"] = b.put(
        patient(xml1, facility, refs["organization"]), identifier_query(mrn, xml1["MA_BN"])
    )
    for coverage in coverages(xml1, refs["patient"]):
        b.put(coverage, identifier_query(BHYT_SYSTEM, coverage["subscriberId"]))
    visit = facility.system("visit")
    enc = encounter(xml1, facility, refs)
    refs["encounter"] = b.put(enc, identifier_query(visit, xml1["MA_LK"]))
    diagnoses = []
    for rank, code in enumerate(diagnosis_codes(xml1), start=1):
        ident = record_id(facility, "condition", xml1["MA_LK"], code)
        resource = condition(xml1, code, rank == 1, refs, ident)
        url = b.put(resource, identifier_query(ident["system"], ident["value"]))
        diagnoses.append({"condition": {"reference": url}, "rank": rank})
    if diagnoses:
        enc["diagnosis"] = diagnoses
    details.add(b, tables, refs)
    # The doctors the HOSO's lines name took part in the visit.
    doctors = [e["fullUrl"] for e in b.entries if e["resource"]["resourceType"] == "Practitioner"]
    if doctors:
        enc["participant"] = [{"individual": {"reference": url}} for url in doctors]
    return b.bundle()


def bundle(hoso: Hoso, facility: Facility | None, source: str) -> Bundle | Rejection:
    """Return the Bundle of a HOSO, or a Rejection naming every table, record and field at fault."""
    place = f"{source}: HOSO {hoso.number}" + (f" MA_LK={hoso.ma_lk}" if hoso.ma_lk else "")
    if hoso.problems:
        return Rejection(place, "; ".join(hoso.problems))
    tables, problems = check(hoso)
    if not tables.get("XML1"):
        return Rejection(place, "the HOSO has no XML1 (TONG_HOP) table")
    if len(tables["XML1"]) > 1:
        return Rejection(place, "the HOSO has more than one XML1 (TONG_HOP) record")
    if problems:
        return Rejection(place, "; ".join(problems))
    code = hoso.facility_code or tables["XML1"][0].get("MA_CSKCB", "")
    try:
        return episode(hoso, tables, facility or Facility(code))
    except RecordError as e:
        return Rejection(place, str(e))
    except ValueError as e:
        return Rejection(place, f"{where('XML1', tables['XML1'][0])}: {e}")
