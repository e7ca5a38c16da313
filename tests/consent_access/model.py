"""A generated world of facilities, persons, records and consents, and what each caller may see
of it: the model the access test compares every read path of the hub with.

The oracle here is written from docs/consent.md and docs/security.md, apart from the hub's
code: it reads nothing the hub computes. Consents come from templates whose meaning is stated
in plain rules (`Kind.verdict`), so that the oracle never asks the consent engine either.
"""

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
VIETNAM = timezone(timedelta(hours=7))
LABELS = ("PSY", "HIV")
SHARED_TYPES = {"Practitioner"}
PERMIT, DENY, STANDING = 1, 2, 3  # verdict strengths: the strongest wins
# The first instant of the dataPeriod consents' span: 1 January 2026 in Vietnam.
RECENT = datetime(2026, 1, 1, tzinfo=VIETNAM)


@dataclass
class Version:
    """One version of a record as the oracle knows it."""

    key: str  # "Type/id"
    number: int
    holder: str | None  # the facility code it is attributed to
    resource: dict[str, Any] | None  # None: a deletion
    patients: frozenset[str] = frozenset()  # Patient ids it concerns
    by_person: bool = False

    @property
    def type(self) -> str:
        return self.key.split("/")[0]

    @property
    def deleted(self) -> bool:
        return self.resource is None

    def labels(self) -> set[str]:
        meta = (self.resource or {}).get("meta") or {}
        return {c["code"] for c in meta.get("security") or ()}

    def codes(self) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        _codings(self.resource or {}, found)
        return found

    def references(self) -> set[str]:
        found: set[str] = set()
        _references(self.resource or {}, found)
        return found

    def when(self, written: datetime) -> tuple[datetime, datetime]:
        """The first and last instant of the record's clinical time (a Period without an end
        is ongoing), else the instant it was written."""
        resource = self.resource or {}
        text = resource.get("effectiveDateTime") or resource.get("recordedDate")
        if text:
            return datetime.fromisoformat(text), datetime.fromisoformat(text)
        period = resource.get("period") or {}
        if period.get("start"):
            end = period.get("end")
            last = datetime.fromisoformat(end) if end else datetime.max.replace(tzinfo=UTC)
            return datetime.fromisoformat(period["start"]), last
        return written, written


def _codings(node: Any, found: set[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            found.add((node["system"], node["code"]))
        for key, value in node.items():
            if key != "meta":
                _codings(value, found)
    elif isinstance(node, list):
        for item in node:
            _codings(item, found)


def _references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.add(node["reference"])
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for item in node:
            _references(item, found)


@dataclass(frozen=True)
class Kind:
    """A consent template: its provision and, in plain rules, its verdict."""

    name: str
    facility: str = ""  # the facility an actor names
    reference: str = ""  # the Encounter a data provision names

    def provision(self) -> dict[str, Any]:
        """Return the Consent.provision of this template."""
        treat = [{"system": PURPOSE, "code": "TREAT"}, {"system": PURPOSE, "code": "ETREAT"}]
        actor = {
            "role": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP",
                    }
                ]
            },
            "reference": {"identifier": {"system": FACILITY_SYSTEM, "value": self.facility}},
        }
        psy = {"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "PSY"}]}
        chapter = {"type": "deny", "code": [{"coding": [{"system": ICD10, "code": "F32"}]}]}
        return {
            "permit all": {"type": "permit"},
            "deny all": {"type": "deny"},
            "permit but PSY": {"type": "permit", "provision": [psy]},
            "permit Conditions": {
                "type": "permit",
                "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}],
            },
            "permit one facility": {"type": "permit", "actor": [actor]},
            "deny one facility": {"type": "deny", "actor": [actor]},
            "permit expired": {"type": "permit", "period": {"end": "2021-12-31"}},
            "permit emergencies": {"type": "permit", "purpose": [treat[1]]},
            "deny even in emergencies": {"type": "deny", "purpose": treat},
            "permit recent records": {"type": "permit", "dataPeriod": {"start": "2026-01-01"}},
            "permit but depression": {"type": "permit", "provision": [chapter]},
            "permit one visit": {
                "type": "permit",
                "data": [{"meaning": "dependents", "reference": {"reference": self.reference}}],
            },
        }[self.name]

    def verdict(self, facility: str, purpose: str, record: Version, written: datetime) -> int:
        """Return how the template decides (0: silent) for an access and a record."""
        name = self.name
        if name == "permit all":
            return PERMIT
        if name == "deny all":
            return DENY
        if name == "permit but PSY":
            return DENY if "PSY" in record.labels() else PERMIT
        if name == "permit Conditions":
            return PERMIT if record.type == "Condition" else 0
        if name == "permit one facility":
            return PERMIT if facility == self.facility else 0
        if name == "deny one facility":
            return DENY if facility == self.facility else 0
        if name == "permit expired":
            return 0
        if name == "permit emergencies":
            return PERMIT if purpose == "ETREAT" else 0
        if name == "deny even in emergencies":
            return STANDING
        if name == "permit recent records":  # the record's time overlaps 2026 onwards
            return PERMIT if record.when(written)[1] >= RECENT else 0
        if name == "permit but depression":
            depressed = any(s == ICD10 and c.startswith("F32") for s, c in record.codes())
            return DENY if depressed else PERMIT
        if name == "permit one visit":
            return PERMIT if self.reference in {record.key, *record.references()} else 0
        raise ValueError(name)


@dataclass
class Given:
    """A consent as the oracle knows it: whose, what, who wrote it, whether in force."""

    key: str
    person: str
    kind: Kind
    writer: str | None  # the facility that wrote it; None: the person themselves
    active: bool


@dataclass
class World:
    """What was written, version by version, and who is whom."""

    facilities: list[str]
    written: datetime  # about when the records were written (the fallback clinical time)
    person_of: dict[str, str] = field(default_factory=dict)  # Patient id -> person
    citizen: dict[str, str] = field(default_factory=dict)  # person -> citizen ID
    versions: dict[str, list[Version]] = field(default_factory=dict)  # key -> versions
    consents: list[Given] = field(default_factory=list)

    def patients_of(self, person: str) -> set[str]:
        return {p for p, who in self.person_of.items() if who == person}

    def person_patients(self, patient_ids: Iterable[str]) -> set[str]:
        """Return every Patient id of the persons these Patient ids belong to."""
        persons = {self.person_of[p] for p in patient_ids if p in self.person_of}
        return {p for p, who in self.person_of.items() if who in persons}

    def current(self, key: str) -> Version:
        return self.versions[key][-1]

    def all_versions(self) -> list[Version]:
        return [v for versions in self.versions.values() for v in versions]


@dataclass(frozen=True)
class Caller:
    """Who asks, as the oracle needs it."""

    role: str
    facility: str | None = None
    person: str | None = None  # a patient's own person
    declared: str | None = None  # the person a break-the-glass token was declared for

    @property
    def purpose(self) -> str:
        return "ETREAT" if self.declared else "TREAT"


def sees(world: World, caller: Caller, named: set[str], version: Version) -> bool:
    """Tell whether the caller may see this version, judged with its record's current one."""
    current = world.current(version.key)
    return _shows(world, caller, named, current) and _shows(world, caller, named, version)


def _shows(world: World, caller: Caller, named: set[str], version: Version) -> bool:
    if caller.role == "facility":
        return version.holder == caller.facility
    if version.type in SHARED_TYPES:
        return caller.role in ("clinician", "patient", "admin")
    if caller.role == "patient":
        own = world.patients_of(caller.person or "")
        return bool(version.patients) and version.patients <= own
    if caller.role != "clinician":
        return False
    if version.holder == caller.facility:
        return True
    if not version.patients & named:
        return False
    persons = {world.person_of[p] for p in version.patients}
    return all(_person_allows(world, caller, person, version) for person in persons)


def _person_allows(world: World, caller: Caller, person: str, record: Version) -> bool:
    strongest = 0
    for given in world.consents:
        if given.person != person or not given.active:
            continue
        if given.writer is not None and given.writer != record.holder:
            continue  # a facility's consent governs only its own records
        verdict = given.kind.verdict(caller.facility or "", caller.purpose, record, world.written)
        strongest = max(strongest, verdict)
    if strongest == PERMIT:
        return True
    if caller.declared == person and strongest != STANDING:
        return True  # break the glass, for the declared person only
    return False


def named_patients(world: World, patient_ids: Iterable[str]) -> set[str]:
    """Return the Patient ids a request naming these patients reaches: their persons'."""
    return world.person_patients(patient_ids)


def draw(seed: int) -> random.Random:
    """Return the generator of one world."""
    return random.Random(seed)


def later(t: datetime, days: int) -> str:
    """Return a FHIR dateTime `days` after t, in Vietnam."""
    return (t + timedelta(days=days)).astimezone(VIETNAM).isoformat(timespec="seconds")


def utc_now() -> datetime:
    return datetime.now(UTC)
