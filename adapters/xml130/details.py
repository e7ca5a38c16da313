"""The detail tables of a HOSO: drugs (XML2), services and supplies (XML3), results (XML4),
progress notes (XML5), discharge paper (XML7) and record summary (XML8)."""

from collections.abc import Callable
from typing import Any

from adapters.base import (
    CCHN_SYSTEM,
    LOINC_SYSTEM,
    UCUM_SYSTEM,
    BundleBuilder,
    Resource,
    identifier,
    identifier_query,
)
from adapters.xml130.envelope import Record
from adapters.xml130.values import (
    RecordError,
    date_time,
    instant,
    local_code,
    number,
    record_id,
    split,
    text_attachment,
    where,
)

Refs = dict[str, str]
# Units as XML4 writes them -> UCUM.
UCUM = {
    "mmol/l": "mmol/L",
    "µmol/l": "umol/L",
    "umol/l": "umol/L",
    "g/l": "g/L",
    "g/dl": "g/dL",
    "mg/dl": "mg/dL",
    "u/l": "U/L",
    "%": "%",
    "t/l": "10*12/L",
    "g/l(bc)": "10*9/L",
    "10^9/l": "10*9/L",
    "10^12/l": "10*12/L",
    "fl": "fL",
    "pg": "pg",
    "mmhg": "mm[Hg]",
    "lần/phút": "/min",
}
# Units whose case carries meaning: G/L (giga per litre, cell counts) is not g/L (grams).
UCUM_EXACT = {"G/L": "10*9/L", "g/L": "g/L", "T/L": "10*12/L", "g/l": "g/L"}
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
REPORT_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"


def _put(b: BundleBuilder, resource: Resource, kind: str, *parts: str) -> str:
    """Put a detail resource under a derived identifier (MA_LK and its row's key)."""
    ident = record_id(b.facility, kind, *parts)
    resource["identifier"] = [ident]
    return b.put(resource, identifier_query(ident["system"], ident["value"]))


def practitioners(b: BundleBuilder, codes: str) -> list[Resource]:
    """Return References to the practitioners a field names by practising certificate (several
    separated by `;`), each added once, and created only if the hub has none: a claim line
    knows a doctor's number, not their name, which must not be erased."""
    found = []
    for code in split(codes):
        doctor = {"resourceType": "Practitioner", "identifier": [identifier(CCHN_SYSTEM, code)]}
        found.append({"reference": b.post(doctor, identifier_query(CCHN_SYSTEM, code))})
    return found


def _context(refs: Refs) -> Resource:
    return {
        "subject": {"reference": refs["patient"]},
        "encounter": {"reference": refs["encounter"]},
    }


def drug(b: BundleBuilder, row: Record, refs: Refs) -> None:
    """Add an XML2 drug row as a MedicationRequest and its MedicationDispense."""
    medicine = {
        "coding": [local_code("ma-thuoc", row["MA_THUOC"], row.get("TEN_THUOC", ""))],
        "text": " ".join(filter(None, (row.get("TEN_THUOC"), row.get("HAM_LUONG")))),
    }
    dosage: Resource = {
        "text": " ".join(filter(None, (row.get("LIEU_DUNG"), row.get("CACH_DUNG"))))
    }
    if row.get("DUONG_DUNG"):
        dosage["route"] = {"coding": [local_code("duong-dung", row["DUONG_DUNG"])]}
    amount = number(row.get("SO_LUONG", ""))
    quantity = {"value": amount, "unit": row.get("DON_VI_TINH", "")} if amount is not None else None
    request: Resource = {
        "resourceType": "MedicationRequest",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": medicine,
        "subject": {"reference": refs["patient"]},
        "encounter": {"reference": refs["encounter"]},
        "authoredOn": date_time(row["NGAY_YL"], "NGAY_YL"),
        "dosageInstruction": [dosage],
    }
    if quantity:
        request["dispenseRequest"] = {"quantity": quantity}
    if doctors := practitioners(b, row.get("MA_BAC_SI", "")):
        request["requester"] = doctors[0]
    key = (row["MA_LK"], row["STT"])
    request_url = _put(b, request, "medication-request", *key)
    dispense: Resource = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": medicine,
        "subject": {"reference": refs["patient"]},
        "context": {"reference": refs["encounter"]},
        "authorizingPrescription": [{"reference": request_url}],
        "dosageInstruction": [dosage],
    }
    if quantity:
        dispense["quantity"] = quantity
    given = row.get("NGAY_TH_YL") or row["NGAY_YL"]
    dispense["whenHandedOver"] = date_time(given, "NGAY_TH_YL")
    _put(b, dispense, "medication-dispense", *key)


def service(b: BundleBuilder, row: Record, refs: Refs) -> None:
    """Add an XML3 row: a Procedure for a service, and a ChargeItem for every row."""
    is_supply = bool(row.get("MA_VAT_TU")) and not row.get("MA_DICH_VU")
    if is_supply:
        code = local_code("ma-vat-tu", row["MA_VAT_TU"], row.get("TEN_VAT_TU", ""))
    else:
        code = local_code("ma-dich-vu", row.get("MA_DICH_VU", ""), row.get("TEN_DICH_VU", ""))
    concept = {"coding": [code], "text": code.get("display", code["code"])}
    done = row.get("NGAY_TH_YL") or row.get("NGAY_YL", "")
    key = (row["MA_LK"], row["STT"])
    if not is_supply and row.get("MA_DICH_VU"):
        procedure: Resource = {
            "resourceType": "Procedure",
            "status": "completed",
            "code": concept,
            **_context(refs),
        }
        if done:
            procedure["performedDateTime"] = date_time(done, "NGAY_TH_YL")
        if doctors := practitioners(b, row.get("MA_BAC_SI", "")):
            procedure["performer"] = [{"actor": doctor} for doctor in doctors]
        _put(b, procedure, "procedure", *key)
    charge: Resource = {
        "resourceType": "ChargeItem",
        "status": "billed",
        "code": concept,
        "subject": {"reference": refs["patient"]},
        "context": {"reference": refs["encounter"]},
    }
    amount = number(row.get("SO_LUONG", ""))
    if amount is not None:
        charge["quantity"] = {"value": amount, "unit": row.get("DON_VI_TINH", "")}
    price = number(row.get("THANH_TIEN_BV", ""))
    if price is not None:
        charge["priceOverride"] = {"value": price, "currency": "VND"}
    if done:
        charge["occurrenceDateTime"] = date_time(done, "NGAY_TH_YL")
    _put(b, charge, "charge-item", *key)


def observation(b: BundleBuilder, row: Record, refs: Refs) -> Resource:
    """Return an XML4 result row as an Observation: a quantity, a text, or a description."""
    code: Resource = {"text": row["TEN_CHI_SO"]}
    if row.get("MA_CHI_SO"):
        code["coding"] = [local_code("ma-chi-so", row["MA_CHI_SO"], row["TEN_CHI_SO"])]
    value, unit = row.get("GIA_TRI", ""), row.get("DON_VI_DO", "")
    found: Resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": category(row)}]},
        ],
        "code": code,
        **_context(refs),
    }
    if doctors := practitioners(b, row.get("MA_BS_DOC_KQ", "")):
        found["performer"] = doctors
    if row.get("NGAY_KQ"):
        found["effectiveDateTime"] = date_time(row["NGAY_KQ"], "NGAY_KQ")
        found["issued"] = instant(row["NGAY_KQ"], "NGAY_KQ")
    amount = number(value) if value else None
    if amount is not None:
        quantity: Resource = {"value": amount}
        if unit:
            quantity["unit"] = unit
            ucum = UCUM_EXACT.get(unit) or UCUM.get(unit.lower())
            if ucum:
                quantity |= {"system": UCUM_SYSTEM, "code": ucum}
        found["valueQuantity"] = quantity
    elif value:
        found["valueString"] = f"{value} {unit}".strip()
    elif row.get("MO_TA"):
        found["valueString"] = row["MO_TA"]
    notes = [
        row[f] for f in ("MO_TA", "KET_LUAN") if row.get(f) and row[f] != found.get("valueString")
    ]
    if notes:
        found["note"] = [{"text": text} for text in notes]
    return found


def category(row: Record) -> str:
    """Return whether an XML4 row is a laboratory result or an imaging finding."""
    return "laboratory" if row.get("GIA_TRI") else "imaging"


def results(b: BundleBuilder, rows: list[Record], names: dict[str, str], refs: Refs) -> None:
    """Add XML4 rows as Observations, grouped per service (MA_DICH_VU) in a DiagnosticReport."""
    groups: dict[str, list[Record]] = {}
    for row in rows:
        groups.setdefault(row.get("MA_DICH_VU") or "CLS", []).append(row)
    for service_code, group in groups.items():
        urls = []
        for row in group:
            try:
                resource = observation(b, row, refs)
            except ValueError as e:
                raise RecordError(f"{where('XML4', row)}: {e}") from None
            urls.append(_put(b, resource, "observation", row["MA_LK"], row["STT"]))
        first = group[0]
        name = names.get(service_code, "")
        code: Resource = {"text": name or group[0]["TEN_CHI_SO"]}
        if service_code != "CLS":
            code["coding"] = [local_code("ma-dich-vu", service_code, name)]
        kind = "LAB" if category(first) == "laboratory" else "RAD"
        report: Resource = {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "category": [{"coding": [{"system": REPORT_CATEGORY, "code": kind}]}],
            "code": code,
            **_context(refs),
            "result": [{"reference": url} for url in urls],
        }
        done = [r["NGAY_KQ"] for r in group if r.get("NGAY_KQ")]
        if done:
            report["effectiveDateTime"] = date_time(max(done), "NGAY_KQ")
            report["issued"] = instant(max(done), "NGAY_KQ")
        readers = {
            p["reference"]: p for r in group for p in practitioners(b, r.get("MA_BS_DOC_KQ", ""))
        }
        if readers:
            report["resultsInterpreter"] = list(readers.values())
        conclusions = [r["KET_LUAN"] for r in group if r.get("KET_LUAN")]
        if conclusions:
            report["conclusion"] = "; ".join(dict.fromkeys(conclusions))
        _put(b, report, "diagnostic-report", first["MA_LK"], service_code)


def document(
    b: BundleBuilder,
    row: Record,
    refs: Refs,
    kind: tuple[str, str],
    text: str,
    when: str,
    author: str,
) -> None:
    """Add a text document (progress note, discharge paper, summary) as a DocumentReference,
    dated by the record's field `when`, written by the practitioners of its field `author`."""
    loinc, title = kind
    resource: Resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": LOINC_SYSTEM, "code": loinc}], "text": title},
        "subject": {"reference": refs["patient"]},
        "content": [{"attachment": text_attachment(text, title)}],
        "context": {"encounter": [{"reference": refs["encounter"]}]},
    }
    if row.get(when):
        resource["date"] = instant(row[when], when)
    if doctors := practitioners(b, row.get(author, "")):
        resource["author"] = doctors
    _put(b, resource, f"document/{loinc}", row["MA_LK"], row.get("STT", "") or "1")


def lines(row: Record, names: tuple[str, ...]) -> str:
    """Return the named fields of a record as `NAME: value` lines, the empty ones left out."""
    return "\n".join(f"{name}: {row[name]}" for name in names if row.get(name))


PROGRESS_NOTE = ("11506-3", "Diễn biến lâm sàng")
DISCHARGE_PAPER = ("18842-5", "Giấy ra viện")
SUMMARY = ("34133-9", "Tóm tắt hồ sơ bệnh án")
XML5_FIELDS = ("DIEN_BIEN_LS", "GIAI_DOAN_BENH", "HOI_CHAN", "PHAU_THUAT", "NGUOI_THUC_HIEN")
XML7_FIELDS = (
    "SO_LUU_TRU", "MA_YTE", "MA_KHOA_RV", "NGAY_VAO", "NGAY_RA", "CHAN_DOAN_RV", "PP_DIEUTRI",
    "GHI_CHU", "TEN_BS", "SO_NGAY_NGHI", "NGOAITRU_TUNGAY", "NGOAITRU_DENNGAY",
)  # fmt: skip
XML8_FIELDS = (
    "HO_TEN_CHA", "HO_TEN_ME", "NGUOI_GIAM_HO", "NGAY_VAO", "NGAY_RA", "CHAN_DOAN_VAO",
    "CHAN_DOAN_RV", "QT_BENHLY", "TOMTAT_KQ", "PP_DIEUTRI", "KET_QUA_DTRI", "GHI_CHU",
)  # fmt: skip


def _rows(table: str, rows: list[Record], add: Callable[[Record], Any]) -> None:
    """Add each row of a table; an unreadable value names its row."""
    for row in rows:
        try:
            add(row)
        except ValueError as e:
            raise RecordError(f"{where(table, row)}: {e}") from None


def add(b: BundleBuilder, tables: dict[str, list[Record]], refs: Refs) -> None:
    """Add the resources of every detail table the HOSO has."""
    _rows("XML2", tables.get("XML2", []), lambda row: drug(b, row, refs))
    _rows("XML3", tables.get("XML3", []), lambda row: service(b, row, refs))
    names = {r.get("MA_DICH_VU", ""): r.get("TEN_DICH_VU", "") for r in tables.get("XML3", [])}
    results(b, tables.get("XML4", []), names, refs)
    for table, kind, names_of, when, author in (
        ("XML5", PROGRESS_NOTE, XML5_FIELDS, "THOI_DIEM_DBLS", "NGUOI_THUC_HIEN"),
        ("XML7", DISCHARGE_PAPER, XML7_FIELDS, "NGAY_CT", "MA_BS"),
        ("XML8", SUMMARY, XML8_FIELDS, "NGAY_CT", ""),  # XML8 names no doctor
    ):
        for row in tables.get(table, []):
            try:
                document(b, row, refs, kind, lines(row, names_of), when, author)
            except ValueError as e:
                raise RecordError(f"{where(table, row)}: {e}") from None
