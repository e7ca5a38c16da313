"""Patient-privacy Consents checked as they are written: the hub stores only what its consent
engine can enforce. https://hl7.org/fhir/R4/consent.html, docs/consent.md

A Consent whose scope is patient-privacy must name its Patient by a literal reference (a
Patient the writer holds, or an entry of the same Bundle), and, while it is or may become in
force (draft, proposed, active), be readable by `consent.Policy.from_consents`, with every
Organization actor resolving to a registered facility. Otherwise the write is refused (422)
naming the element; a transaction with one such Consent writes nothing. A withdrawn Consent
(inactive, rejected, entered-in-error) is not read by the engine: withdrawing always works.
"""

from typing import Any

from consent import MalformedConsent, Policy, data_references, organization_references
from consent.model import CONSENT_SCOPE_SYSTEM, PATIENT_PRIVACY
from hub.access.policies import facility_codes, related_references
from hub.auth.roles import Role
from hub.fhir.entry import Entry
from hub.fhir.outcome import BusinessRule
from hub.fhir.result import Context
from hub.store.resources import key

# Statuses under which a Consent is, or may become, in force: the engine must read it.
_IN_FORCE = frozenset({"draft", "proposed", "active"})


def is_patient_privacy(resource: Any) -> bool:
    """Tell whether a resource is a Consent whose scope is patient-privacy."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Consent":
        return False
    scope = resource.get("scope")
    codings = scope.get("coding") if isinstance(scope, dict) else None
    return any(
        isinstance(c, dict)
        and c.get("system") == CONSENT_SCOPE_SYSTEM
        and c.get("code") == PATIENT_PRIVACY
        for c in codings or ()
    )


async def check_consents(ctx: Context, entries: list[Entry]) -> None:
    """Refuse (422) the request if one patient-privacy Consent it writes cannot be enforced,
    naming the element; entries must have passed `hub.fhir.entry.check`."""
    consents = [
        e
        for e in entries
        if e.method in ("POST", "PUT")
        and e.target.resource_type == "Consent"
        and is_patient_privacy(e.resource)
    ]
    if not consents:
        return
    # The Patients this request writes itself: a Consent may name them by fullUrl or id.
    written: set[str] = set()
    for e in entries:
        if e.method in ("POST", "PUT") and e.target.resource_type == "Patient":
            written |= {e.full_url} if e.full_url else set()
            written |= {key("Patient", e.target.id)} if e.target.id else set()
    for e in consents:
        # As the write will: references under this hub's base made relative.
        e.references.resolve({}, ctx.base)
    bodies = [e.resource or {} for e in consents]
    references = organization_references(bodies)
    system = ctx.settings.facility_system
    organizations = await facility_codes(ctx.store, system, references, ctx.session)
    wanted = data_references(bodies)
    related = await related_references(ctx.store, wanted, ctx.session, ctx.scope)
    patients: dict[str, Entry] = {}
    for entry, body in zip(consents, bodies, strict=True):
        patient = _patient(entry, body)
        if body.get("status") not in _IN_FORCE:
            continue
        _readable(ctx, entry, body, organizations, related)
        if patient not in written:
            patients.setdefault(patient, entry)
    await _patients_exist(ctx, patients)


def _patient(entry: Entry, body: dict[str, Any]) -> str:
    """Return the Consent's patient reference, refusing one that is not Patient/<id> or a
    urn:uuid of a Bundle entry."""
    patient = body.get("patient")
    ref = patient.get("reference") if isinstance(patient, dict) else None
    if not isinstance(ref, str):
        raise BusinessRule(
            f"{entry.where('resource.patient.reference')}: a patient-privacy Consent must name "
            "its patient by a literal reference, Patient/<id>",
            expression=entry.where("resource.patient.reference"),
        )
    parts = ref.split("/")
    if not ref.startswith("urn:uuid:") and (len(parts) != 2 or parts[0] != "Patient"):
        raise BusinessRule(
            f"{entry.where('resource.patient.reference')}: {ref!r} is not a reference to a "
            "Patient of this hub, Patient/<id>",
            expression=entry.where("resource.patient.reference"),
        )
    return ref


def _readable(
    ctx: Context,
    entry: Entry,
    body: dict[str, Any],
    organizations: dict[str, str],
    related: dict[str, frozenset[str]],
) -> None:
    """Refuse the Consent unless the consent engine reads it (as it would read it active)."""
    try:
        Policy.from_consents(
            [body | {"status": "active"}],
            organizations,
            ctx.settings.consent_default,
            facility_system=ctx.settings.facility_system,
            zone=ctx.settings.zone,
            related=related,
        )
    except MalformedConsent as error:
        where = entry.where("resource" + error.path.removeprefix("Consent"))
        problem = str(error).removeprefix(f"{error.path}: ")
        if error.consent:
            problem = problem.removesuffix(f" ({error.consent})")
        if problem.endswith("is not a known facility"):
            system = ctx.settings.facility_system
            problem += (
                f" (no Organization of that id with an identifier under {system} is stored); "
                f"name the facility by its identifier under {system} instead"
            )
        raise BusinessRule(
            f"{where}: {problem}; the hub stores only consents it can enforce",
            expression=where,
        ) from None


async def _patients_exist(ctx: Context, patients: dict[str, Entry]) -> None:
    """Refuse a Consent whose Patient is not one the writer holds."""
    literal = {ref: e for ref, e in patients.items() if not ref.startswith("urn:uuid:")}
    found = await ctx.store.currents(sorted(literal), ctx.scope, ctx.session)
    for ref, entry in literal.items():
        if ref not in found or found[ref].deleted:
            where = entry.where("resource.patient.reference")
            if ctx.caller.role == Role.PATIENT:
                problem = "is not one of your Patient records; a person writes their own consents"
            elif ctx.scope.facility:
                problem = (
                    f"is not a Patient of facility {ctx.scope.facility}; a facility writes "
                    "consents for its own patients"
                )
            else:
                problem = "is not a Patient in the hub"
            raise BusinessRule(f"{where}: {ref} {problem}", expression=where)
    for ref, entry in patients.items():
        if ref.startswith("urn:uuid:"):
            where = entry.where("resource.patient.reference")
            raise BusinessRule(
                f"{where}: {ref} names no Patient entry of this Bundle", expression=where
            )
