"""ORU^R01 results: a DiagnosticReport per OBR and an Observation per OBX."""

import re

from adapters.base import Resource, identifier

from . import datatypes as dt
from .common import Context, add_encounter, add_patient, identifier_query, subject
from .message import Repetition, Segment

INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERPRETATIONS = {
    "<", ">", "A", "AA", "AC", "B", "CAR", "D", "DET", "E", "EX", "EXP", "H", "HH", "HM",
    "HU", "HX", "I", "IE", "IND", "L", "LL", "LU", "LX", "MS", "N", "NCL", "ND", "NEG", "NR",
    "NS", "POS", "QCF", "R", "RR", "S", "SDD", "TOX", "U", "VS", "W", "WR",
}  # fmt: skip
# OBX-11 (table 0085) to Observation.status.
OBSERVATION_STATUS = {
    "F": "final",
    "C": "corrected",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "A": "amended",
    "U": "final",
    "X": "cancelled",
    "N": "cancelled",
    "D": "entered-in-error",
    "W": "entered-in-error",
    "I": "registered",
    "O": "registered",
}
# OBR-25 (table 0123) to DiagnosticReport.status.
REPORT_STATUS = {
    "F": "final",
    "C": "corrected",
    "A": "partial",
    "P": "preliminary",
    "R": "partial",
    "X": "cancelled",
    "I": "registered",
    "O": "registered",
    "S": "registered",
}
COMPARATORS = {"<", "<=", ">=", ">"}
RANGE = re.compile(r"^\s*([-+]?\d*\.?\d+)\s*(?:-|to|–)\s*([-+]?\d*\.?\d+)\s*$")
DECIMAL_COMMA = re.compile(r"(\d),(\d)")
BOUND = re.compile(r"^\s*([<>]=?)\s*([-+]?\d*\.?\d+)\s*$")
TEXT_TYPES = {"ST", "TX", "FT", "ID", "IS", "RP", "HD"}
CODED_TYPES = {"CE", "CWE", "CNE", "CF"}


def map_oru(ctx: Context) -> None:
    """Add the Patient, Encounter, and each order's report and results."""
    add_patient(ctx)
    add_encounter(ctx)
    order: Segment | None = None
    obr: Segment | None = None
    results: list[str] = []
    for segment in ctx.message.segments:
        if segment.name == "ORC":
            order = segment
        elif segment.name == "OBR":
            if obr is not None:
                add_report(ctx, obr, order, results)
            obr, results = segment, []
        elif segment.name == "OBX":
            results.append(add_observation(ctx, segment, obr, order, len(results) + 1))
    if obr is not None:
        add_report(ctx, obr, order, results)


def order_identifiers(ctx: Context, obr: Segment | None, orc: Segment | None) -> list[Resource]:
    """Return the filler then placer order numbers (OBR-3/2, else ORC-3/2)."""
    found = []
    for kind, number, type_code in (("filler", 3, "FILL"), ("order", 2, "PLAC")):
        value = (obr.get(number) if obr else "") or (orc.get(number) if orc else "")
        if value:
            found.append(identifier(ctx.facility.system(kind), value, type_code))
    return found


def add_report(ctx: Context, obr: Segment, orc: Segment | None, results: list[str]) -> str:
    """Add the DiagnosticReport of an OBR, keyed on its filler (or placer) order number."""
    identifiers = order_identifiers(ctx, obr, orc)
    if not identifiers:
        value = ctx.key(ctx.message.control_id, obr.get(1) or "1")
        identifiers = [identifier(ctx.facility.system("report"), value)]
    report: Resource = {
        "resourceType": "DiagnosticReport",
        "identifier": identifiers,
        "status": REPORT_STATUS.get(obr.get(25).upper(), "unknown"),
        "code": dt.codeable_concept(obr.rep(4)) or {"text": "OBR-4 not given"},
    }
    subject(ctx, report)
    effective = dt.date_time(obr.get(7))
    if effective:
        report["effectiveDateTime"] = effective
    issued = dt.instant(obr.get(22))
    if issued:
        report["issued"] = issued
    report["performer"] = [ctx.ref(ctx.organization)]
    if results:
        report["result"] = [ctx.ref(url) for url in results]
    first = identifiers[0]
    return ctx.builder.put(report, identifier_query(first["system"], first["value"]))


def add_observation(
    ctx: Context, obx: Segment, obr: Segment | None, orc: Segment | None, position: int
) -> str:
    """Add the Observation of an OBX, keyed on its order, set id (or position) and code."""
    orders = order_identifiers(ctx, obr, orc)
    order_key = orders[0]["value"] if orders else ctx.message.control_id
    value = ctx.key(order_key, obx.get(1) or str(position), obx.get(3), obx.get(4))
    system = ctx.facility.system("observation")
    observation = observation_resource(ctx, obx)
    observation["identifier"] = [identifier(system, value)]
    effective = dt.date_time(obx.get(14)) or (dt.date_time(obr.get(7)) if obr else None)
    if effective:
        observation["effectiveDateTime"] = effective
    return ctx.builder.put(observation, identifier_query(system, value))


def observation_resource(ctx: Context, obx: Segment) -> Resource:
    """Return an OBX as an Observation: code, value, range, flags and status."""
    observation: Resource = {
        "resourceType": "Observation",
        "status": OBSERVATION_STATUS.get(obx.get(11).upper(), "unknown"),
        "code": dt.codeable_concept(obx.rep(3)) or {"text": f"OBX {obx.get(2)} value"},
    }
    subject(ctx, observation)
    observation.update(observation_value(obx))
    ranges = reference_range(obx)
    if ranges:
        observation["referenceRange"] = [ranges]
    flags = [interpretation(r.get(1), r.get(2)) for r in obx.reps(8)]
    if flags:
        observation["interpretation"] = flags
    observation["performer"] = [ctx.ref(ctx.organization)]
    return observation


def observation_value(obx: Segment) -> Resource:
    """Return the value[x] of an OBX from its value type (OBX-2) and value (OBX-5)."""
    kind, reps = obx.get(2).upper(), obx.reps(5)
    if not reps:
        return {}
    first = reps[0]
    if kind == "NM":
        value = dt.number(first.get(1))
        if value is not None:
            return {"valueQuantity": dt.quantity(value, obx.rep(6))}
    elif kind == "SN":
        return structured_numeric(obx)
    elif kind in CODED_TYPES:
        concept = dt.codeable_concept(first)
        if concept:
            return {"valueCodeableConcept": concept}
    elif kind in ("DT", "TS", "DTM"):
        when = dt.date_time(first.get(1))
        if when:
            return {"valueDateTime": when}
    elif kind == "TM" and re.fullmatch(r"\d{4}(\d{2})?", first.get(1)):
        time = first.get(1)
        return {"valueTime": f"{time[:2]}:{time[2:4]}:{time[4:6] or '00'}"}
    elif kind == "ED":
        return {}  # encapsulated data belongs in a DocumentReference or Media, not a value
    text = "\n".join(first.get(1) if kind not in TEXT_TYPES else _text(r) for r in reps)
    return {"valueString": text} if text.strip() else {}


def _text(rep: Repetition) -> str:
    return "^".join(rep.get(i) for i in range(1, len(rep.components) + 1)).rstrip("^")


def structured_numeric(obx: Segment) -> Resource:
    """Return an SN (comparator, number, separator, number) as a Quantity, Range or Ratio."""
    sn = obx.rep(5)
    comparator, low, separator, high = sn.get(1), dt.number(sn.get(2)), sn.get(3), None
    high = dt.number(sn.get(4))
    unit = obx.rep(6)
    if low is not None and high is not None and separator in (":", "/"):
        return {"valueRatio": {"numerator": dt.quantity(low, unit), "denominator": {"value": high}}}
    if low is not None and high is not None and separator == "-":
        return {"valueRange": {"low": dt.quantity(low, unit), "high": dt.quantity(high, unit)}}
    if low is None:
        return {}
    found = dt.quantity(low, unit)
    if comparator in COMPARATORS:
        found["comparator"] = comparator
    return {"valueQuantity": found}


def reference_range(obx: Segment) -> Resource | None:
    """Return OBX-7 as a referenceRange: "70-80", "4.3 to 6.2", "<5", or text; Vietnamese
    labs print "3,9 - 5,2" and "≤ 40", read alike."""
    text, unit = obx.get(7), obx.rep(6)
    if not text:
        return None
    low = high = None
    plain = DECIMAL_COMMA.sub(r"\1.\2", text).replace("≤", "<=").replace("≥", ">=")
    match = RANGE.match(plain)
    bound = BOUND.match(plain)
    if match:
        low, high = dt.number(match.group(1)), dt.number(match.group(2))
    elif bound and bound.group(1).startswith("<"):
        high = dt.number(bound.group(2))
    elif bound:
        low = dt.number(bound.group(2))
    found: Resource = {}
    if low is not None:
        found["low"] = dt.quantity(low, unit)
    if high is not None:
        found["high"] = dt.quantity(high, unit)
    found["text"] = text
    return found


def interpretation(code: str, text: str) -> Resource:
    """Return an OBX-8 abnormal flag as a v3 ObservationInterpretation concept."""
    code = code.upper() if code.upper() in INTERPRETATIONS else code
    if code in INTERPRETATIONS:
        return {"coding": [{"system": INTERPRETATION_SYSTEM, "code": code}], "text": text or code}
    return {"text": text or code}
