"""RDE pharmacy orders (MedicationRequest from ORC + RXE) and RDS dispenses
(MedicationDispense from ORC + RXD)."""

from adapters.base import Resource, identifier

from . import datatypes as dt
from .common import (
    Context,
    MappingError,
    add_encounter,
    add_patient,
    add_practitioner,
    identifier_query,
    subject,
)
from .message import Segment

# ORC-1 order control (table 0119) to MedicationRequest.status; anything else is active.
ORDER_STATUS = {
    "CA": "cancelled",
    "OC": "cancelled",
    "CR": "cancelled",
    "DC": "stopped",
    "OD": "stopped",
    "HD": "on-hold",
    "OH": "on-hold",
}


def map_pharmacy(ctx: Context) -> None:
    """Add the Patient, Encounter, and each order's request (RXE) and dispense (RXD)."""
    add_patient(ctx)
    add_encounter(ctx)
    orc: Segment | None = None
    request: str | None = None
    found = 0
    for position, segment in enumerate(ctx.message.segments):
        if segment.name == "ORC":
            orc, request = segment, None
        elif segment.name == "RXE":
            rxr = _route(ctx, position)
            request = add_request(ctx, segment, orc, rxr, position)
            found += 1
        elif segment.name == "RXD":
            add_dispense(ctx, segment, orc, request, position)
            found += 1
    if not found:
        raise MappingError(f"{ctx.message.type}^{ctx.message.trigger} has no RXE or RXD segment")


def _route(ctx: Context, position: int) -> Segment | None:
    following = ctx.message.segments[position + 1 : position + 2]
    return following[0] if following and following[0].name == "RXR" else None


def order_key(ctx: Context, orc: Segment | None, *fallback: str) -> tuple[list[Resource], str]:
    """Return the placer and filler numbers of an order, and the value to key on."""
    found = []
    for kind, number, type_code in (("order", 2, "PLAC"), ("filler", 3, "FILL")):
        if orc is not None and orc.get(number):
            found.append(identifier(ctx.facility.system(kind), orc.get(number), type_code))
    key = found[0]["value"] if found else ctx.key(ctx.mrn, *fallback)
    return found, key


def add_request(
    ctx: Context, rxe: Segment, orc: Segment | None, rxr: Segment | None, position: int
) -> str:
    """Add the MedicationRequest of an RXE, keyed on its placer number and RXE-2 code."""
    identifiers, key = order_key(ctx, orc, ctx.message.control_id, str(position))
    system = ctx.facility.system("medication-request")
    value = ctx.key(key, rxe.get(2))
    request: Resource = {
        "resourceType": "MedicationRequest",
        "identifier": [identifier(system, value), *identifiers],
        "status": ORDER_STATUS.get(orc.get(1).upper() if orc else "", "active"),
        "intent": "order",
        "medicationCodeableConcept": dt.codeable_concept(rxe.rep(2)) or {"text": "RXE-2 not given"},
    }
    subject(ctx, request)
    authored = dt.date_time(orc.get(9)) if orc else None
    if authored:
        request["authoredOn"] = authored
    requester = add_practitioner(ctx, orc.rep(12)) if orc else None
    request["requester"] = ctx.ref(requester or ctx.organization)
    request["dosageInstruction"] = [dosage(rxe, rxr)]
    amount = dt.number(rxe.get(10))
    if amount is not None:
        supply: Resource = {"quantity": dt.quantity(amount, rxe.rep(11))}
        repeats = dt.number(rxe.get(12))
        if isinstance(repeats, int) and repeats >= 0:
            supply["numberOfRepeatsAllowed"] = repeats
        request["dispenseRequest"] = supply
    return ctx.builder.put(request, identifier_query(system, value))


def dosage(rxe: Segment, rxr: Segment | None) -> Resource:
    """Return the Dosage of an RXE: instructions (RXE-7), amount (RXE-3, RXE-5) and route."""
    found: Resource = {}
    text = "; ".join(r.get(2) or r.get(1) for r in rxe.reps(7))
    if text:
        found["text"] = text
    amount = dt.number(rxe.get(3))
    if amount is not None:
        found["doseAndRate"] = [{"doseQuantity": dt.quantity(amount, rxe.rep(5))}]
    route = dt.codeable_concept(rxr.rep(1)) if rxr else None
    if route:
        found["route"] = route
    return found or {"text": "RXE gives no dosage"}


def add_dispense(
    ctx: Context, rxd: Segment, orc: Segment | None, request: str | None, position: int
) -> str:
    """Add the MedicationDispense of an RXD, keyed on its prescription number (RXD-7) or
    order and dispense sub-id (RXD-1)."""
    _, key = order_key(ctx, orc, ctx.message.control_id, str(position))
    value = ctx.key(rxd.get(7) or key, rxd.get(1), rxd.get(2))
    system = ctx.facility.system("medication-dispense")
    dispense: Resource = {
        "resourceType": "MedicationDispense",
        "identifier": [identifier(system, value)],
        "status": "completed",
        "medicationCodeableConcept": dt.codeable_concept(rxd.rep(2)) or {"text": "RXD-2 not given"},
    }
    subject(ctx, dispense, "context")
    dispense["performer"] = [{"actor": ctx.ref(ctx.organization)}]
    if request:
        dispense["authorizingPrescription"] = [ctx.ref(request)]
    amount = dt.number(rxd.get(4))
    if amount is not None:
        dispense["quantity"] = dt.quantity(amount, rxd.rep(5))
    handed = dt.date_time(rxd.get(3))
    if handed:
        dispense["whenHandedOver"] = handed
    return ctx.builder.put(dispense, identifier_query(system, value))
