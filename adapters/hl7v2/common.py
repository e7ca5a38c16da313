"""What every message family maps alike: the Patient (PID), the Encounter (PV1), the
practitioners (XCN) and locations (PL) they name.

Identifiers: every PID-3 medical record number (type MR, PI, PT, MRN or none) goes under the
sending facility's `mrn` system, whatever PID-3.4 says: assigning authorities arrive as
free text or OIDs that differ between feeds of one hospital, while the facility code is known
and unique nationally. A national ID (type NI or CCCD) goes under the CCCD system, an
insurance card (HC or BHYT) under the national card system; other types (SS, AN, ...) under
the facility's system of that type.
"""

from dataclasses import dataclass, field

from adapters.base import (
    BHYT_SYSTEM,
    CCCD_SYSTEM,
    BundleBuilder,
    Facility,
    Resource,
    identifier,
    identifier_query,
)

from . import datatypes as dt
from .message import Message, Repetition, Segment

MRN_TYPES = {"", "MR", "MRN", "PI", "PT", "PN"}
CITIZEN_TYPES = {"NI", "CCCD"}
INSURANCE_TYPES = {"HC", "BHYT"}  # the health-insurance card (thẻ BHYT)
NATIONAL_SYSTEMS = {CCCD_SYSTEM, BHYT_SYSTEM}
GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
ENCOUNTER_CLASS = {
    "I": ("IMP", "inpatient encounter"),
    "B": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# PV1 fields naming practitioners, and their role in the encounter.
PV1_PRACTITIONERS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"))
PV1_ADMITTING = (17, "ADM", "admitter")
# The Encounter.status an ADT event implies; others follow PV1-44/45.
EVENT_STATUS = {
    "A01": "in-progress",
    "A02": "in-progress",
    "A03": "finished",
    "A04": "in-progress",
    "A05": "planned",
    "A11": "cancelled",
    "A13": "in-progress",
}


class MappingError(ValueError):
    """A message that parses but lacks what its mapping needs, e.g. a PID without an id."""


@dataclass
class Context:
    """One message being mapped: its Bundle, and the fullUrls of what others refer to."""

    message: Message
    facility: Facility
    builder: BundleBuilder = field(init=False)
    organization: str = field(init=False)
    patient: str = ""
    mrn: str = ""
    encounter: str | None = None

    def __post_init__(self) -> None:
        self.builder = BundleBuilder(self.facility)
        self.organization = self.builder.organization()

    def ref(self, url: str) -> Resource:
        """Return a Reference to a fullUrl."""
        return {"reference": url}

    def key(self, *parts: str) -> str:
        """Return a stable identifier value from a message's own keys."""
        return "-".join(p.replace("|", "/") for p in parts if p) or self.message.control_id


def patient_identifiers(pid: Segment, facility: Facility) -> list[Resource]:
    """Return PID-3's identifiers (PID-2 when PID-3 is empty), the MRN first."""
    found: list[Resource] = []
    for rep in pid.reps(3) or pid.reps(2):
        value, kind = rep.get(1), rep.get(5).upper()
        if not value:
            continue
        if kind in CITIZEN_TYPES:
            ident = identifier(CCCD_SYSTEM, value, "NI")
        elif kind in INSURANCE_TYPES:
            ident = identifier(BHYT_SYSTEM, value, "HC")
        elif kind in MRN_TYPES:
            ident = identifier(facility.system("mrn"), value, "MR")
        else:
            ident = identifier(facility.system(kind.lower()), value, kind)
        if all(i["system"] != ident["system"] or i["value"] != value for i in found):
            found.append(ident)
    mrns = [i for i in found if i["system"] == facility.system("mrn")]
    return mrns + [i for i in found if i not in mrns]


def patient_resource(pid: Segment, ctx: Context) -> Resource:
    """Return the Patient a PID describes."""
    identifiers = patient_identifiers(pid, ctx.facility)
    if not identifiers:
        raise MappingError("PID-3 holds no patient identifier")
    patient: Resource = {"resourceType": "Patient", "identifier": identifiers, "active": True}
    names = [n for n in map(dt.human_name, pid.reps(5)) if n]
    if names:
        patient["name"] = names
    telecoms = [t for r in pid.reps(13) if (t := dt.telecom(r, "home"))]
    telecoms += [t for r in pid.reps(14) if (t := dt.telecom(r, "work"))]
    if telecoms:
        patient["telecom"] = telecoms
    if pid.get(8).upper() in GENDER:
        patient["gender"] = GENDER[pid.get(8).upper()]
    birth = dt.date(pid.get(7))
    if birth:
        patient["birthDate"] = birth
    deceased = dt.date_time(pid.get(29))
    if deceased:
        patient["deceasedDateTime"] = deceased
    elif pid.get(30).upper() in ("Y", "N"):
        patient["deceasedBoolean"] = pid.get(30).upper() == "Y"
    addresses = [a for a in map(dt.address, pid.reps(11)) if a]
    if addresses:
        patient["address"] = addresses
    patient["managingOrganization"] = ctx.ref(ctx.organization)
    return patient


def write(ctx: Context, resource: Resource, query: str) -> str:
    """Add a Patient or Encounter as the message's family may: ADT owns them and updates them
    (conditional update); any other message (a lab result, an order) creates them only when
    the hub has none (conditional create), so that its thinner PID or PV1 never overwrites
    what the ADT feed said: a citizen ID, a discharge."""
    if ctx.message.type == "ADT":
        return ctx.builder.put(resource, query)
    return ctx.builder.post(resource, query)


def add_patient(ctx: Context, pid: Segment | None = None) -> str:
    """Add the message's Patient, keyed on its MRN, and return its fullUrl."""
    pid = pid or ctx.message.first("PID")
    if pid is None:
        raise MappingError("the message has no PID segment")
    patient = patient_resource(pid, ctx)
    first = patient["identifier"][0]
    if first["system"] in NATIONAL_SYSTEMS:
        # Keyed on a national number, this facility's message would overwrite the Patient
        # another facility holds under that number.
        raise MappingError(
            "PID-3 holds no number of the facility's own (type MR, PI, PT or none), only "
            f"national ones ({first['value']}): the hub keys each facility's patients on its own"
        )
    ctx.mrn = first["value"]
    ctx.patient = write(ctx, patient, identifier_query(first["system"], first["value"]))
    return ctx.patient


def add_practitioner(ctx: Context, rep: Repetition) -> str | None:
    """Add the Practitioner an XCN names, keyed on its id, and return its fullUrl."""
    if not rep.get(1):
        return None
    system = ctx.facility.system("practitioner")
    practitioner: Resource = {
        "resourceType": "Practitioner",
        "identifier": [{"system": system, "value": rep.get(1)}],
    }
    name = dt.practitioner_name(rep)
    if name:
        practitioner["name"] = [name]
    # Created once, never replaced: an XCN is often just an id, which must not erase a name.
    return ctx.builder.post(practitioner, identifier_query(system, rep.get(1)))


def add_location(ctx: Context, rep: Repetition) -> str | None:
    """Add the Location a PL names (point of care, room, bed) and return its fullUrl."""
    parts = [rep.get(i) for i in (1, 2, 3) if rep.get(i)]
    if not parts:
        return None
    value = "/".join(parts)
    system = ctx.facility.system("location")
    location: Resource = {
        "resourceType": "Location",
        "identifier": [{"system": system, "value": value}],
        "name": " ".join(parts),
        "managingOrganization": ctx.ref(ctx.organization),
    }
    if rep.get(9):
        location["description"] = rep.get(9)
    return ctx.builder.post(location, identifier_query(system, value))


def encounter_status(pv1: Segment, event: str) -> str:
    """Return the Encounter.status an ADT event, or else PV1-44/45, implies."""
    if event in EVENT_STATUS:
        return EVENT_STATUS[event]
    if dt.date_time(pv1.get(45)):
        return "finished"
    return "in-progress" if dt.date_time(pv1.get(44)) else "unknown"


def add_encounter(ctx: Context, event: str = "") -> str | None:
    """Add the Encounter a PV1 describes, keyed on PV1-19 (or the patient and PV1-44); none
    when the PV1 names neither."""
    pv1 = ctx.message.first("PV1")
    if pv1 is None:
        return None
    system = ctx.facility.system("visit")
    if not pv1.get(19) and not pv1.get(44):
        return None  # no visit to name (A28/A31 carry a placeholder PV1): no Encounter
    visit = pv1.get(19) or ctx.key(ctx.mrn, pv1.get(44))
    code, display = ENCOUNTER_CLASS.get(pv1.get(2).upper(), ("UNK", "unknown"))
    encounter: Resource = {
        "resourceType": "Encounter",
        "identifier": [identifier(system, visit, "VN")],
        "status": encounter_status(pv1, event),
        "class": {
            "system": ACT_CODE if code != "UNK" else NULL_FLAVOR,
            "code": code,
            "display": display,
        },
        "subject": ctx.ref(ctx.patient),
    }
    participants = []
    for number, role, text in (*PV1_PRACTITIONERS, PV1_ADMITTING):
        for rep in pv1.reps(number):
            url = add_practitioner(ctx, rep)
            if url:
                kind = {"coding": [{"system": PARTICIPATION, "code": role, "display": text}]}
                participants.append({"type": [kind], "individual": ctx.ref(url)})
    if participants:
        encounter["participant"] = participants
    period = {"start": dt.date_time(pv1.get(44)), "end": dt.date_time(pv1.get(45))}
    if any(period.values()):
        encounter["period"] = {k: v for k, v in period.items() if v}
    location = add_location(ctx, pv1.rep(3))
    if location:
        encounter["location"] = [{"location": ctx.ref(location)}]
    encounter["serviceProvider"] = ctx.ref(ctx.organization)
    ctx.encounter = write(ctx, encounter, identifier_query(system, visit))
    return ctx.encounter


def subject(ctx: Context, resource: Resource, encounter_key: str = "encounter") -> Resource:
    """Set a resource's subject (the Patient) and its encounter, when there is one."""
    resource["subject"] = ctx.ref(ctx.patient)
    if ctx.encounter:
        resource[encounter_key] = ctx.ref(ctx.encounter)
    return resource
