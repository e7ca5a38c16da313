"""VXU^V04 vaccination updates: an Immunization per RXA."""

from adapters.base import Resource, identifier

from . import datatypes as dt
from .common import Context, MappingError, add_encounter, add_patient, identifier_query, subject
from .message import Segment

# RXA-20 completion status (table 0322) to Immunization.status.
COMPLETION = {"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}
UNKNOWN_DOSE = "999"


def map_vxu(ctx: Context) -> None:
    """Add the Patient, Encounter and each administration (RXA, with its ORC and RXR)."""
    add_patient(ctx)
    add_encounter(ctx)
    orc: Segment | None = None
    rxa: Segment | None = None
    position = 0
    for segment in ctx.message.segments:
        if segment.name == "ORC":
            orc = segment
        elif segment.name == "RXA":
            if rxa is not None:
                add_immunization(ctx, rxa, orc, None, position)
            rxa, position = segment, position + 1
        elif segment.name == "RXR" and rxa is not None:
            add_immunization(ctx, rxa, orc, segment, position)
            rxa = None
    if rxa is not None:
        add_immunization(ctx, rxa, orc, None, position)
    if position == 0:
        raise MappingError("VXU^V04 has no RXA segment")


def add_immunization(
    ctx: Context, rxa: Segment, orc: Segment | None, rxr: Segment | None, position: int
) -> str:
    """Add the Immunization of an RXA, keyed on ORC-3 (filler), ORC-2, or the patient,
    date and vaccine."""
    occurrence = dt.date_time(rxa.get(3))
    if occurrence is None:
        raise MappingError(f"RXA #{position}: RXA-3 {rxa.get(3)!r} is not an HL7 date/time")
    value = (orc.get(3) or orc.get(2)) if orc else ""
    value = value or ctx.key(ctx.mrn, rxa.get(3), rxa.get(5))
    system = ctx.facility.system("immunization")
    if any(
        e["request"]["url"].endswith(identifier_query(system, value)) for e in ctx.builder.entries
    ):
        # Several RXA under one order: each is its own administration, told apart by RXA-2.
        value = ctx.key(value, rxa.get(2) or str(position))
    status = COMPLETION.get(rxa.get(20).upper(), "completed")
    if rxa.get(21).upper() == "D":
        status = "entered-in-error"
    immunization: Resource = {
        "resourceType": "Immunization",
        "identifier": [identifier(system, value)],
        "status": status,
        "vaccineCode": dt.codeable_concept(rxa.rep(5)) or {"text": "RXA-5 not given"},
    }
    subject(ctx, immunization)
    immunization["patient"] = immunization.pop("subject")
    immunization["occurrenceDateTime"] = occurrence
    if rxa.get(9):
        immunization["primarySource"] = rxa.get(9) == "00"
    if rxa.get(15):
        immunization["lotNumber"] = rxa.get(15)
    expiry = dt.date(rxa.get(16))
    if expiry and len(expiry) == len("YYYY-MM-DD"):
        immunization["expirationDate"] = expiry
    if rxa.get(17, 2) or rxa.get(17):
        immunization["manufacturer"] = {"display": rxa.get(17, 2) or rxa.get(17)}
    dose = dt.number(rxa.get(6))
    if dose is not None and rxa.get(6) != UNKNOWN_DOSE:
        immunization["doseQuantity"] = dt.quantity(dose, rxa.rep(7))
    if rxr is not None:
        for number, key in ((1, "route"), (2, "site")):
            concept = dt.codeable_concept(rxr.rep(number))
            if concept:
                immunization[key] = concept
    immunization["performer"] = [{"actor": ctx.ref(ctx.organization)}]
    return ctx.builder.put(immunization, identifier_query(system, value))
