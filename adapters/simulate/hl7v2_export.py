"""A simulated facility's HL7 v2.5 feed: each visit as the ADT and ORU messages its interface
engine sends, one after another in one UTF-8 file, every segment ending in CR.

A visit becomes ADT^A01 (admission) or ADT^A04 (outpatient registration) at its start, an
ORU^R01 with one OBX per result when it has labs, and ADT^A03 at its end. A03 is "discharge/
end visit": it ends outpatient visits too, which the hub would otherwise keep in progress.
The ADT messages carry the visit's diagnoses (DG1, ICD-10): working ones at the start, final
ones at the end.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from adapters.simulate.population import LabTest, Person, Visit

VERSION = "2.5"
ENCODING_CHARACTERS = "^~\\&"
SEGMENT_END = "\r"
SENDING_APPLICATION = "HIS"
RECEIVING_APPLICATION = "EHRHUB"
CCCD_AUTHORITY = "BCA"  # Bộ Công an issues the citizen ID
CARD_AUTHORITY = "BHXH"  # Bảo hiểm xã hội issues the insurance card
# The escape character first, so that the sequences the others become are not escaped again.
ESCAPES = (
    ("\\", "\\E\\"),
    ("|", "\\F\\"),
    ("^", "\\S\\"),
    ("&", "\\T\\"),
    ("~", "\\R\\"),
    ("\r", "\\X0D\\"),
    ("\n", "\\X0A\\"),
)
GENDER = {"male": "M", "female": "F"}
# Units as the HIS prints them, to UCUM codes; the others print as UCUM already.
UCUM = {"µmol/L": "umol/L", "G/L": "10*9/L"}
LAB_REPORT = ("11502-2", "Phiếu kết quả xét nghiệm")  # LOINC: laboratory report
SAMPLE_TAKEN = timedelta(minutes=30)
RESULTS_READY = timedelta(minutes=90)


def escape(text: str) -> str:
    """Return free text with the HL7 delimiters in it written as escape sequences."""
    for char, sequence in ESCAPES:
        text = text.replace(char, sequence)
    return text


def components(*parts: str) -> str:
    """Return one field of escaped components, without the empty ones at its end."""
    return "^".join(map(escape, parts)).rstrip("^")


def timestamp(moment: datetime) -> str:
    """Return a DTM with its zone: 20261127083000+0700."""
    return moment.strftime("%Y%m%d%H%M%S%z")


def segment(name: str, fields: dict[int, str]) -> str:
    """Return a segment from its fields by number (MSH-1, the field separator, is implied)."""
    first = 2 if name == "MSH" else 1
    return "|".join([name] + [fields.get(n, "") for n in range(first, max(fields) + 1)])


def msh(visit: Visit, moment: datetime, kind: str, control_id: str) -> str:
    """Return the MSH of a message of `kind` (MSH-9, e.g. ADT^A01^ADT_A01)."""
    return segment(
        "MSH",
        {
            2: ENCODING_CHARACTERS,
            3: SENDING_APPLICATION,
            4: escape(visit.facility.code),
            5: RECEIVING_APPLICATION,
            7: timestamp(moment),
            9: kind,
            10: escape(control_id),
            11: "P",
            12: VERSION,
            17: "VNM",
            18: "UNICODE UTF-8",
        },
    )


def pid(person: Person, facility_code: str) -> str:
    """Return the PID: MRN and citizen ID, name, birth, sex, address and phone."""
    identifiers = (
        components(person.mrn(facility_code), "", "", facility_code, "MR"),
        components(person.cccd, "", "", CCCD_AUTHORITY, "NI"),
        components(person.card, "", "", CARD_AUTHORITY, "HC"),
    )
    return segment(
        "PID",
        {
            1: "1",
            3: "~".join(identifiers),
            # XPN: family, then the given names in the order they are written (middle first).
            5: components(person.family, person.middle, person.given, "", "", "", "L"),
            7: person.birth.strftime("%Y%m%d"),
            8: GENDER[person.gender],
            11: components(person.street, "", "", person.province.name, "", "VN", "H"),
            13: components(person.phone, "PRN", "CP"),
        },
    )


def xcn(doctor: tuple[str, str, str]) -> str:
    """Return a doctor as an XCN: licence number, family name, middle and given, title."""
    licence, family_middle, given = doctor
    family, _, middle = family_middle.partition(" ")
    return components(licence, family, middle, given, "", "BS")


def pv1(visit: Visit, ended: bool) -> str:
    """Return the PV1: class, department, attending doctor, visit number and times."""
    fields = {
        1: "1",
        2: "I" if visit.inpatient else "O",
        3: components(visit.department, "", "", visit.facility.code),
        7: xcn(visit.doctor),
        19: escape(visit.number),
        44: timestamp(visit.start),
    }
    if ended:
        fields[45] = timestamp(visit.end)
    return segment("PV1", fields)


def adt(visit: Visit, trigger: str, moment: datetime) -> list[str]:
    """Return the segments of an ADT message about a visit."""
    structure = "ADT_A03" if trigger == "A03" else "ADT_A01"
    return [
        msh(visit, moment, f"ADT^{trigger}^{structure}", f"{visit.number}-{trigger}"),
        segment("EVN", {1: trigger, 2: timestamp(moment), 6: timestamp(moment)}),
        pid(visit.person, visit.facility.code),
        pv1(visit, ended=trigger == "A03"),
        *dg1s(visit, "F" if trigger == "A03" else "W", moment),
    ]


def dg1s(visit: Visit, kind: str, moment: datetime) -> list[str]:
    """Return a DG1 per diagnosis of a visit, ICD-10 coded, the main one of priority 1."""
    return [
        segment(
            "DG1",
            {
                1: str(n),
                3: components(code, name, "I10"),
                5: timestamp(moment),
                6: kind,
                15: str(n),
            },
        )
        for n, (code, name) in enumerate(visit.diagnoses, 1)
    ]


def reference_range(normal: str) -> str:
    """Return a range as printed ("3,9 - 5,2", "≤ 40") as OBX-7 writes it ("3.9-5.2", "<=40");
    a range in words ("Âm tính") as it is."""
    text = "".join(normal.replace(",", ".").replace("≤", "<=").replace("≥", ">=").split())
    try:
        bounds(text)
    except ValueError:
        return normal
    return text


def bounds(range_: str) -> tuple[float | None, float | None]:
    """Return the low and high of an OBX-7 range ("3.9-5.2", "<=40", ">1"); ValueError if none."""
    if range_.startswith("<"):
        return None, float(range_.lstrip("<="))
    if range_.startswith(">"):
        return float(range_.lstrip(">=")), None
    low, _, high = range_.partition("-")
    return float(low), float(high)


def abnormal_flag(value: float, range_: str) -> str:
    """Return OBX-8 for a value against an OBX-7 range: H, L or N ("" for a range in words)."""
    try:
        low, high = bounds(range_)
    except ValueError:
        return ""
    if low is not None and value < low:
        return "L"
    if high is not None and value > high:
        return "H"
    return "N"


def obx(number: int, test: LabTest, value: float, taken: datetime) -> str:
    """Return the OBX of one numeric result: LOINC code, value, UCUM unit, range and flag."""
    range_ = reference_range(test.normal)
    return segment(
        "OBX",
        {
            1: str(number),
            2: "NM",
            3: components(test.loinc, test.name, "LN"),
            5: f"{value:g}",
            6: components(UCUM.get(test.unit, test.unit), test.unit, "UCUM"),
            7: escape(range_),
            8: abnormal_flag(value, range_),
            11: "F",
            14: timestamp(taken),
        },
    )


def oru(visit: Visit) -> list[str]:
    """Return the segments of the ORU^R01 of a visit's lab results: one order, one report."""
    taken, ready = visit.start + SAMPLE_TAKEN, visit.start + RESULTS_READY
    placer, filler = f"{visit.number}-CD", f"{visit.number}-XN"
    doctor = xcn(visit.doctor)
    return [
        msh(visit, ready, "ORU^R01^ORU_R01", f"{visit.number}-R01"),
        pid(visit.person, visit.facility.code),
        pv1(visit, ended=False),
        segment("ORC", {1: "RE", 2: escape(placer), 3: escape(filler), 5: "CM", 12: doctor}),
        segment(
            "OBR",
            {
                1: "1",
                2: escape(placer),
                3: escape(filler),
                4: components(*LAB_REPORT, "LN"),
                7: timestamp(taken),
                16: doctor,
                22: timestamp(ready),
                25: "F",
            },
        ),
        *(obx(n, test, value, taken) for n, (test, value) in enumerate(visit.labs, 1)),
    ]


def visit_messages(visit: Visit) -> Iterator[list[str]]:
    """Yield the segments of each message a visit becomes, in the order they are sent."""
    yield adt(visit, "A01" if visit.inpatient else "A04", visit.start)
    if visit.labs:
        yield oru(visit)
    yield adt(visit, "A03", visit.end)


def write_hl7v2(path: Path, visits: Iterable[Visit]) -> int:
    """Write visits as an HL7 v2.5 file, a message at a time; return the number of messages."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        for visit in visits:
            for segments in visit_messages(visit):
                out.write("".join(s + SEGMENT_END for s in segments))
                count += 1
    return count
