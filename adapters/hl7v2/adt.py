"""ADT (admit, discharge, transfer) messages: Patient and Encounter; A40 merges patients."""

from adapters.base import identifier

from .common import Context, MappingError, add_encounter, add_patient, identifier_query

TRIGGERS = {"A01", "A02", "A03", "A04", "A05", "A08", "A11", "A13", "A28", "A31", "A40"}


def map_adt(ctx: Context) -> None:
    """Add an ADT message's Patient, and its Encounter when a PV1 is present."""
    if ctx.message.trigger == "A40":
        map_merge(ctx)
        return
    add_patient(ctx)
    add_encounter(ctx, ctx.message.trigger)


def map_merge(ctx: Context) -> None:
    """Link each surviving patient (PID) to the one it replaces (the MRG that follows it).

    The prior Patient is written with its identifier, `active: false` and a `replaced-by`
    link; the survivor gets a `replaces` link. https://hl7.org/fhir/R4/patient.html#links
    """
    segments = ctx.message.segments
    pairs = [
        (pid, next((s for s in segments[i + 1 :] if s.name in ("MRG", "PID")), None))
        for i, pid in enumerate(segments)
        if pid.name == "PID"
    ]
    if not pairs:
        raise MappingError("ADT^A40 has no PID segment")
    system = ctx.facility.system("mrn")
    for pid, mrg in pairs:
        if mrg is None or mrg.name != "MRG" or not mrg.get(1):
            raise MappingError("ADT^A40: a PID is not followed by an MRG naming MRG-1")
        survivor = add_patient(ctx, pid)
        prior_mrn = mrg.get(1)
        prior = ctx.builder.put(
            {
                "resourceType": "Patient",
                "identifier": [identifier(system, prior_mrn, "MR")],
                "active": False,
                "link": [{"other": ctx.ref(survivor), "type": "replaced-by"}],
                "managingOrganization": ctx.ref(ctx.organization),
            },
            identifier_query(system, prior_mrn),
        )
        entry = next(e for e in ctx.builder.entries if e["fullUrl"] == survivor)
        entry["resource"].setdefault("link", []).append(
            {"other": ctx.ref(prior), "type": "replaces"}
        )
