"""SIU scheduling messages: an Appointment from SCH, with its resources (AIP, AIL)."""

from datetime import datetime, timedelta

from adapters.base import Resource, identifier

from . import datatypes as dt
from .common import (
    Context,
    MappingError,
    add_encounter,
    add_location,
    add_patient,
    add_practitioner,
    identifier_query,
)
from .message import Segment

# The Appointment.status each trigger event leaves the appointment in.
TRIGGER_STATUS = {
    "S12": "booked",
    "S13": "booked",
    "S14": "booked",
    "S15": "cancelled",
    "S16": "cancelled",
    "S17": "entered-in-error",
    "S26": "noshow",
}
MINUTES = {"S": 1 / 60, "MIN": 1, "M": 1, "H": 60, "HR": 60, "D": 1440}


def map_siu(ctx: Context) -> None:
    """Add the Patient, Encounter and the Appointment the SCH describes."""
    sch = ctx.message.first("SCH")
    if sch is None:
        raise MappingError(f"SIU^{ctx.message.trigger} has no SCH segment")
    add_patient(ctx)
    add_encounter(ctx)
    value = sch.get(2) or sch.get(1) or ctx.key(ctx.mrn, ctx.message.control_id)
    system = ctx.facility.system("appointment")
    appointment: Resource = {
        "resourceType": "Appointment",
        "identifier": [identifier(system, value)],
        "status": TRIGGER_STATUS.get(ctx.message.trigger, "booked"),
    }
    reason = dt.codeable_concept(sch.rep(7))
    if reason:
        appointment["reasonCode"] = [reason]
    kind = dt.codeable_concept(sch.rep(8))
    if kind:
        appointment["appointmentType"] = kind
    start, end = appointment_period(ctx, sch)
    if start and end:
        appointment["start"], appointment["end"] = start, end
    elif appointment["status"] in ("booked", "noshow"):
        # FHIR lets only proposed or cancelled appointments go without a start and end.
        appointment["status"] = "proposed"
    appointment["participant"] = participants(ctx)
    ctx.builder.put(appointment, identifier_query(system, value))


def appointment_period(ctx: Context, sch: Segment) -> tuple[str | None, str | None]:
    """Return the start and end: SCH-11 (TQ.4, TQ.5), else TQ1-7/8, else AIS/AIL/AIP-6
    plus its duration."""
    start, end = dt.instant(sch.get(11, 4)), dt.instant(sch.get(11, 5))
    tq1 = ctx.message.first("TQ1")
    if not start and tq1 is not None:
        start, end = dt.instant(tq1.get(7)), dt.instant(tq1.get(8))
    for name in ("AIS", "AIL", "AIP", "AIG"):
        if start and end:
            break
        for resource in ctx.message.all(name):
            start = start or dt.instant(resource.get(6))
            end = end or _plus(start, resource.get(9), resource.get(10))
    if start and not end:
        end = _plus(start, sch.get(9), sch.get(10))
    return start, end


def _plus(start: str | None, duration: str, units: str) -> str | None:
    amount = dt.number(duration)
    factor = MINUTES.get(units.split("^")[0].upper()) if units else MINUTES["MIN"]
    if not start or amount is None or factor is None:
        return None
    later = datetime.fromisoformat(start) + timedelta(minutes=amount * factor)
    return later.isoformat()


def participants(ctx: Context) -> list[Resource]:
    """Return the patient, the practitioners (AIP-3) and the locations (AIL-3)."""
    found = [{"actor": ctx.ref(ctx.patient), "status": "accepted"}]
    for aip in ctx.message.all("AIP"):
        url = add_practitioner(ctx, aip.rep(3))
        if url:
            found.append({"actor": ctx.ref(url), "status": "accepted"})
    for ail in ctx.message.all("AIL"):
        url = add_location(ctx, ail.rep(3))
        if url:
            found.append({"actor": ctx.ref(url), "status": "accepted"})
    return found
