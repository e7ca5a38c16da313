"""The one access decision: may this caller see this version of this record?

Every read path asks it, through the store's scope (hub/store/scope.py): read, vread, every
history, every search form, `$everything`, batch and transaction reads, conditional answers,
the audit trail's patients and quality findings. It is pure: the persons and policies it needs
are resolved before it is asked (hub/access/view.py). The rules (docs/security.md):

- Without a token, on a hub that does not require one: everything.
- A facility system: the records its facility holds.
- Shared reference data (organizations, locations, practitioners, medications): every
  clinician, patient and admin. An admin sees nothing else; an auditor or an analyst no record.
- A patient: the records that concern them and no one else.
- A clinician: their facility's records; a record another facility holds when the request
  names a person it concerns and every person it concerns allows it (deny wins), each by
  their consent policy for the clinician's facility, purpose and time. Breaking the glass
  overrides, for the declared person only, what their consents do not deny in emergencies.
- A version is shown only if the record's current version is shown too: what a later version
  hides (a security label, a move to another patient, a deletion) hides the earlier ones.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from consent import Access, Policy, Record
from hub.access.persons import Person
from hub.auth.caller import EMERGENCY
from hub.auth.roles import Role
from hub.search.extract import values
from hub.search.registry import registry
from hub.search.values import DateRange
from hub.store.resources import Stored

# The purpose of a clinician's request when their token declares none (v3-ActReason).
TREATMENT = "TREAT"
# The search parameters that give a record's clinical time, in order of preference.
CLINICAL_DATES = ("date", "onset-date", "recorded-date", "authoredon", "occurrence")


@dataclass(frozen=True)
class Viewer:
    """Who asks, as the decision needs it: role, facility, purpose, and the persons."""

    role: Role | None  # None: no token, on a hub that does not require one
    at: datetime
    facility: str | None = None
    practitioner: str | None = None
    purpose: str = TREATMENT
    # Patient ids: of a patient's own person; of the persons a clinician's request names; of
    # the person a break-the-glass token was declared for.
    own: frozenset[str] = frozenset()
    named: frozenset[str] = frozenset()
    emergency_for: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Facts:
    """What the decision reads besides the records: the person of each Patient id on them,
    and each person's consent policy (None: unreadable, so it hides everything held elsewhere)."""

    persons: Mapping[str, Person]
    policies: Mapping[Person, Policy | None]


def decide(viewer: Viewer, facts: Facts, version: Stored, current: Stored | None = None) -> bool:
    """Tell whether the viewer may see this version of a record, whose current version is
    `current` (None or the same: the version is the current one)."""
    if current is not None and current is not version and not shows(viewer, facts, current):
        return False
    return shows(viewer, facts, version)


def shows(viewer: Viewer, facts: Facts, stored: Stored) -> bool:
    """Tell whether the viewer may see one stored version, on its own."""
    role = viewer.role
    if role is None:
        return True
    holder = stored.facility
    if role == Role.FACILITY:
        return holder is not None and holder == viewer.facility
    if stored.shared:
        return role in (Role.CLINICIAN, Role.PATIENT, Role.ADMIN)
    patients = stored.patients
    if role == Role.PATIENT:
        return bool(patients) and patients <= viewer.own
    if role != Role.CLINICIAN:
        return False
    if holder is not None and holder == viewer.facility:
        return True
    if not patients or viewer.named.isdisjoint(patients):
        return False
    concerned = {facts.persons[p] for p in patients}
    record = consent_record(stored)
    return all(_allows(viewer, facts.policies.get(p), p, record) for p in concerned)


def needs_persons(viewer: Viewer, stored: Stored) -> bool:
    """Tell whether deciding a version needs the persons it concerns (and their policies)."""
    if viewer.role != Role.CLINICIAN or stored.shared or stored.facility == viewer.facility:
        return False
    return not viewer.named.isdisjoint(stored.patients)


def _allows(viewer: Viewer, policy: Policy | None, person: Person, record: Record) -> bool:
    """Tell whether one person's policy lets the clinician see their record."""
    if policy is None:
        return False
    emergency = viewer.purpose == EMERGENCY and not viewer.emergency_for.isdisjoint(person.patients)
    access = Access(
        facility=viewer.facility or "",
        at=viewer.at,
        purpose=viewer.purpose,
        break_glass=emergency,
        practitioner=viewer.practitioner,
    )
    return policy.decide(access, record).allowed


def consent_record(stored: Stored) -> Record:
    """Describe a stored version as the consent engine sees it: holder, type, labels,
    references, codes and its clinical time (else the time it was recorded)."""
    return Record.of(stored.resource, stored.facility or "", period=clinical_period(stored))


def clinical_period(stored: Stored) -> tuple[datetime, datetime] | None:
    """Return the [start, end) instants of a version's clinical date (the first of its
    type's CLINICAL_DATES search parameters it has a value for), else of the instant it
    was recorded."""
    params = registry().params(stored.resource_type)
    spans: list[DateRange] = []
    for code in CLINICAL_DATES:
        param = params.get(code)
        if param is not None and param.type == "date" and not spans:
            spans = [v for v in values(stored.doc, param) if isinstance(v, DateRange)]
    if spans:
        low, high = min(s.low for s in spans), max(s.high for s in spans)
        return _instant(low), _just_after(_instant(high))
    ts = stored.doc.get("_hub", {}).get("ts")
    if isinstance(ts, datetime):
        at = ts.astimezone(UTC)
        return at, _just_after(at)
    return None


def _just_after(t: datetime) -> datetime:
    return t if t.year == datetime.max.year else t + timedelta(milliseconds=1)


def _instant(digits: str) -> datetime:
    """Read a 17-digit UTC stamp (yyyyMMddHHmmssSSS) of the search index; an open end (all
    zeros or nines) is the first or last instant there is."""
    try:
        stamp = datetime.strptime(digits[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return (
            datetime.min.replace(tzinfo=UTC) if digits < "1" else datetime.max.replace(tzinfo=UTC)
        )
    return stamp + timedelta(milliseconds=int(digits[14:17] or 0))
