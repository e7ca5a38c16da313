"""ADT (admit, discharge, transfer) messages: Patient, Encounter and its diagnoses (DG1);
A40 merges patients."""

from adapters.base import Resource, identifier

from . import datatypes as dt
from .common import Context, MappingError, add_encounter, add_patient, identifier_query
from .message import Segment

TRIGGERS = {"A01", "A02", "A03", "A04", "A05", "A08", "A11", "A13", "A28", "A31", "A40"}


def map_adt(ctx: Context) -> None:
    """Add an ADT message's Patient, and its Encounter when a PV1 is present."""
    if ctx.message.trigger == "A40":
        map_merge(ctx)
        return
    add_patient(ctx)
    add_encounter(ctx, ctx.message.trigger)
    add_diagnoses(ctx)


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


CONDITION = "http://terminology.hl7.org/CodeSystem/condition-"
# DG1-6 (table 0052): admitting and working diagnoses are provisional, final ones confirmed.
VERIFICATION = {"A": "provisional", "W": "provisional", "F": "confirmed"}


def add_diagnoses(ctx: Context) -> None:
    """Add a Condition per coded DG1, keyed on the visit and the code (set IDs are renumbered
    between messages of one visit), and list them, ranked, in the Encounter's diagnoses."""
    if ctx.encounter is None:
        return
    encounter = next(e["resource"] for e in ctx.builder.entries if e["fullUrl"] == ctx.encounter)
    visit = encounter["identifier"][0]["value"]
    ranked = []
    for order, dg1 in enumerate(ctx.message.all("DG1"), 1):
        concept = dt.codeable_concept(dg1.rep(3))
        if concept is None or "coding" not in concept:
            continue
        code = concept["coding"][0]["code"]
        # Keyed as the XML130 adapter keys a diagnosis, so both feeds name it alike.
        system, value = ctx.facility.system("condition"), f"{visit}.{code}"
        url = ctx.builder.put(
            condition(ctx, dg1, concept, identifier(system, value)),
            identifier_query(system, value),
        )
        rank = dt.number(dg1.get(15))
        ranked.append({"condition": ctx.ref(url), "rank": rank if isinstance(rank, int) else order})
    if ranked:
        encounter["diagnosis"] = ranked


def condition(ctx: Context, dg1: Segment, concept: Resource, ident: Resource) -> Resource:
    """Return the encounter diagnosis a DG1 describes."""
    if dg1.get(4) and "text" not in concept:
        concept["text"] = dg1.get(4)
    found: Resource = {
        "resourceType": "Condition",
        "identifier": [ident],
        "clinicalStatus": {"coding": [{"system": f"{CONDITION}clinical", "code": "active"}]},
        "verificationStatus": {
            "coding": [
                {
                    "system": f"{CONDITION}ver-status",
                    "code": VERIFICATION.get(dg1.get(6).upper(), "unconfirmed"),
                }
            ]
        },
        "category": [
            {"coding": [{"system": f"{CONDITION}category", "code": "encounter-diagnosis"}]}
        ],
        "code": concept,
        "subject": ctx.ref(ctx.patient),
        "encounter": ctx.ref(ctx.encounter or ""),
    }
    recorded = dt.date_time(dg1.get(5))
    if recorded:
        found["recordedDate"] = recorded
    return found
