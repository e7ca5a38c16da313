"""The Patient records of one person, whichever facility holds them.

Records that carry the same national identifier (the citizen ID in Vietnam) are one person,
and so are records a Patient.link points at (a merge, or "see also").
"""

from hub.fhir.result import Context
from hub.search.extract import TOKEN, Reference, Token, values
from hub.search.registry import registry
from hub.store.resources import Stored

# A person with more records than this is a data problem, not a person; stop following links.
MAX_RECORDS = 100


def national_id_key(system: str, value: str) -> str:
    """Return the search key of a Patient carrying this national identifier."""
    return f"Patient.identifier{TOKEN}{value}|{system}"


def national_ids(system: str, patient: Stored) -> list[str]:
    """Return the patient's values of the national identifier `system`."""
    param = registry().params("Patient")["identifier"]
    return [
        t.code
        for t in values(patient.doc, param)
        if isinstance(t, Token) and t.system == system and t.code
    ]


def _links(patient: Stored) -> set[str]:
    param = registry().params("Patient")["link"]
    return {
        r.reference.rsplit("/", 1)[-1]
        for r in values(patient.doc, param)
        if isinstance(r, Reference) and r.type == "Patient" and r.reference
    }


async def same_person(ctx: Context, patient: Stored) -> list[str]:
    """Return the ids of every Patient record of the patient's person, the patient's first."""
    system = ctx.settings.national_id_system
    found = {patient.id: patient}
    pending = [patient]
    while pending and len(found) < MAX_RECORDS:
        current = pending.pop()
        keys = [national_id_key(system, v) for v in national_ids(system, current)]
        linked = await ctx.store.currents(
            [f"Patient/{i}" for i in _links(current) if i not in found], ctx.scope, ctx.session
        )
        candidates = [s for s in linked.values() if not s.deleted]
        if keys:
            query = {"_hub.sv": {"$in": keys}, "resourceType": "Patient"}
            candidates += await ctx.store.find(query, ctx.scope, ctx.session)
        for other in candidates:
            if other.id not in found:
                found[other.id] = other
                pending.append(other)
    return list(found)
