"""HL7 v2 data types into FHIR data types: dates, coded elements, names, addresses,
telecoms and quantities."""

import re
from datetime import datetime

from adapters.base import ICD10_SYSTEM, LOINC_SYSTEM, UCUM_SYSTEM, Resource

from .message import Repetition

HL7_DATE = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$"
)
VN_OFFSET = "+07:00"  # adapters.base.TZ_VN: the zone of a time that names none

# HL7 table 0396 names of coding systems, to FHIR system URIs.
CODE_SYSTEMS = {
    "LN": LOINC_SYSTEM,
    "LOINC": LOINC_SYSTEM,
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "I10": ICD10_SYSTEM,
    "ICD10": ICD10_SYSTEM,
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9CDX": "http://hl7.org/fhir/sid/icd-9-cm",
    "UCUM": UCUM_SYSTEM,
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "MVX": "http://hl7.org/fhir/sid/mvx",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "NCIT": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT4": "http://www.ama-assn.org/go/cpt",
}
UCUM_LIKE = re.compile(r"^[A-Za-z0-9%{}\[\]*./\-'^]+$")


def _parts(value: str) -> tuple[str, ...] | None:
    match = HL7_DATE.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            int(second or 0),
        )  # fmt: skip
    except ValueError:
        return None
    if zone and not (int(zone[1:3]) <= 14 and int(zone[3:]) < 60):
        return None
    return year, month, day, hour, minute, second, fraction, zone


def date(value: str) -> str | None:
    """Return an HL7 DT/DTM as a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD), or None."""
    parts = _parts(value)
    if parts is None:
        return None
    year, month, day = parts[:3]
    return "-".join(p for p in (year, month, day) if p)


def date_time(value: str) -> str | None:
    """Return an HL7 DTM as a FHIR dateTime; a time without a zone is Vietnam's (+07:00)."""
    parts = _parts(value)
    if parts is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = parts
    if not (day and hour):
        return date(value)
    found = f"{year}-{month}-{day}T{hour}:{minute or '00'}:{second or '00'}"
    if fraction and second:
        found += f".{fraction}"
    return found + (f"{zone[:3]}:{zone[3:]}" if zone else VN_OFFSET)


def instant(value: str) -> str | None:
    """Return an HL7 DTM as a FHIR instant: a date alone is taken as its midnight."""
    found = date_time(value)
    if found is None or "T" in found:
        return found
    if len(found) < len("YYYY-MM-DD"):
        return None
    return f"{found}T00:00:00{VN_OFFSET}"


def number(value: str) -> int | float | None:
    """Return an HL7 NM as a JSON number, or None if it is not one; a decimal comma, as
    Vietnamese systems write it ("5,1"), is read as a decimal point."""
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+,\d+", text):
        text = text.replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", text):
        return None
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def coding(code: str, display: str, system_name: str) -> Resource:
    """Return a Coding from an HL7 code, its text and its coding system (table 0396)."""
    found: Resource = {}
    system = CODE_SYSTEMS.get(system_name.upper())
    if system:
        found["system"] = system
    if code:
        found["code"] = code
    if display:
        found["display"] = display
    return found


def codeable_concept(rep: Repetition) -> Resource | None:
    """Return a CodeableConcept from a CE/CWE/CNE: its primary and alternate codings."""
    codings = [
        coding(rep.get(i), rep.get(i + 1), rep.get(i + 2))
        for i in (1, 4)
        if rep.get(i) or rep.get(i + 1)
    ]
    codings = [c for c in codings if "code" in c]
    text = rep.get(9) or rep.get(2) or rep.get(5)
    if not codings and not text:
        text = rep.get(1)
    if not codings and not text:
        return None
    found: Resource = {}
    if codings:
        found["coding"] = codings
    if text:
        found["text"] = text
    return found


NAME_USE = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous"}


def human_name(rep: Repetition) -> Resource | None:
    """Return a HumanName from an XPN (family, given, middle, suffix, prefix, type)."""
    found: Resource = {}
    if rep.get(1):
        found["family"] = rep.get(1)
    given = [g for g in (rep.get(2), rep.get(3)) if g]
    if given:
        found["given"] = given
    if rep.get(4):
        found["suffix"] = [rep.get(4)]
    if rep.get(5):
        found["prefix"] = [rep.get(5)]
    if not found:
        return None
    if rep.get(7) in NAME_USE:
        found["use"] = NAME_USE[rep.get(7)]
    return found


def practitioner_name(rep: Repetition) -> Resource | None:
    """Return a HumanName from an XCN (id, family, given, middle, suffix, prefix)."""
    found: Resource = {}
    if rep.get(2):
        found["family"] = rep.get(2)
    given = [g for g in (rep.get(3), rep.get(4)) if g]
    if given:
        found["given"] = given
    if rep.get(6):
        found["prefix"] = [rep.get(6)]
    return found or None


ADDRESS_USE = {"H": "home", "B": "work", "O": "work", "C": "temp", "BA": "old"}


def address(rep: Repetition) -> Resource | None:
    """Return an Address from an XAD (street, other, city, state, zip, country, type)."""
    found: Resource = {}
    lines = [line for line in (rep.get(1), rep.get(2)) if line]
    if lines:
        found["line"] = lines
    for component, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
        if rep.get(component):
            found[key] = rep.get(component)
    if not found:
        return None
    if rep.get(7) in ADDRESS_USE:
        found["use"] = ADDRESS_USE[rep.get(7)]
    return found


def telecom(rep: Repetition, use: str) -> Resource | None:
    """Return a ContactPoint from an XTN: its email, or its number in any of its forms."""
    if rep.get(4) and "@" in rep.get(4):
        return {"system": "email", "value": rep.get(4), "use": use}
    value = rep.get(1) or rep.get(12)
    if not value and rep.get(7):
        value = "".join(p for p in (rep.get(5), rep.get(6), rep.get(7)) if p)
    if not value:
        return None
    system = "fax" if rep.get(3) == "FX" else "pager" if rep.get(3) == "BP" else "phone"
    return {"system": system, "value": value, "use": use}


def quantity(value: int | float, unit: Repetition) -> Resource:
    """Return a Quantity; the unit is UCUM when CWE names UCUM, or names no system and
    looks like a UCUM expression (labs send UCUM without saying so)."""
    found: Resource = {"value": value}
    code, system = unit.get(1), unit.get(3).upper()
    if code:
        found["unit"] = unit.get(2) or code  # the unit as printed, when the CWE gives it
        if system == "UCUM" or (not system and UCUM_LIKE.match(code)):
            found["system"] = UCUM_SYSTEM
            found["code"] = code
    return found
