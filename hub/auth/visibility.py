"""What a caller may see: the Scope of one request, from its token and the patients' consents.

- A facility system sees its own facility's records.
- A clinician sees their facility's records, shared reference data (organizations,
  locations, practitioners, medications), and the records other facilities hold about the
  patients the request names, as far as each patient's consent allows (`consent/`).
- A patient sees their own records (every Patient record carrying their citizen ID, and what
  belongs to them) and shared reference data.
- An admin sees shared reference data; an auditor or an analyst no resource at all.

A request names patients by its path (`Patient/x`, `Patient/x/$everything`, `Patient/x/Obs…`,
or any record of theirs read by id) and by its search parameters (`patient`, `subject`, …,
`Patient?_id=`, `Patient?identifier=<citizen ID>`, `…identifier=` chained on Patient). A
search that names no patient reaches other facilities' records of nobody: what a clinician
finds by name, code or date is their own facility's. Each named patient is widened to their
person (every Patient record with the same citizen ID), whose active Consents decide.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from consent import (
    Access,
    Grant,
    MalformedConsent,
    Policy,
    Record,
    label_of,
    organization_references,
)
from consent.grant import FALSE
from hub.auth.caller import UNRESTRICTED_CALLER, Caller
from hub.auth.roles import Role
from hub.fhir.consents import facility_codes
from hub.identity.person import national_id_key, national_ids
from hub.search.compartment import keys as compartment_keys
from hub.search.extract import COMPARTMENT
from hub.settings import Settings
from hub.store.resources import ResourceStore, Stored
from hub.store.scope import SHARED, UNRESTRICTED, Scope, facility_key, patient_key

log = logging.getLogger("ehrhub.visibility")

# The search parameters through which a request names a patient's records.
_PATIENT_PARAMS = frozenset({"patient", "subject", "beneficiary", "individual", "link"})
# More patients than this named in one request are not widened beyond the caller's facility.
MAX_NAMED = 20
_PATIENT_PREFIX = f"{COMPARTMENT}Patient/"


@dataclass
class Named:
    """The patients one request names: Patient ids, citizen IDs, and records read by key."""

    patients: set[str] = field(default_factory=set)
    national_ids: set[str] = field(default_factory=set)
    records: set[str] = field(default_factory=set)

    def key(self) -> tuple[frozenset[str], ...]:
        """Return a hashable form, to remember what was found for it."""
        return frozenset(self.patients), frozenset(self.national_ids), frozenset(self.records)


@dataclass(frozen=True)
class Person:
    """The Patient records of one person (one citizen ID, or one record without any)."""

    patients: tuple[str, ...]
    national_id: str | None = None

    def names(self) -> list[Named]:
        """Return each way a request may name this person: a Patient record, the citizen ID."""
        found = [Named(patients={p}) for p in self.patients]
        return found + ([Named(national_ids={self.national_id})] if self.national_id else [])

    def keys(self) -> frozenset[str]:
        """Return the visibility keys of every record of this person: their Patient
        resources and what belongs to them."""
        return frozenset(patient_key(p) for p in self.patients)


@dataclass(frozen=True)
class Consented:
    """What a clinician may see of the persons a request names, held by other facilities:
    every record of some persons, and of others what their grant allows."""

    whole: frozenset[str] = frozenset()
    partly: tuple[tuple[frozenset[str], Grant], ...] = ()

    def scope(self, facility: str) -> Scope:
        """Return the clinician's scope: their facility, shared data, and these records."""
        sees = frozenset({SHARED}) | self.whole.union(*(keys for keys, _ in self.partly))
        if not self.partly:
            return Scope(facility=facility, sees=sees)
        own = facility_key(facility)
        return Scope(facility=facility, sees=sees, check=lambda doc: self.allows(own, doc))

    def allows(self, own: str, doc: Mapping[str, Any]) -> bool:
        """Tell whether a record found under the scope's keys may be shown."""
        internal = doc.get("_hub") or {}
        see = internal.get("see") or ()
        if own in see or SHARED in see or not self.whole.isdisjoint(see):
            return True
        record = Record(
            str(internal.get("fac") or ""),
            str(doc.get("resourceType", "")),
            frozenset(label_of(text) for text in internal.get("labels") or ()),
        )
        return any(not keys.isdisjoint(see) and grant.allows(record) for keys, grant in self.partly)


async def scope_of(request: Request) -> Scope:
    """Return the scope of a request's caller (set by `authenticate`)."""
    caller: Caller = getattr(request.state, "caller", UNRESTRICTED_CALLER)
    if not caller.authenticated:
        return UNRESTRICTED
    store: ResourceStore = request.app.state.store
    settings: Settings = request.app.state.settings
    if caller.role == Role.FACILITY and caller.facility:
        return Scope(facility=caller.facility)
    recent: Recent = request.app.state.recent
    if caller.role == Role.CLINICIAN and caller.facility:
        named = named_in(request, settings.national_id_system)
        persons = await named_persons(store, settings, recent, named)
        found = await policies(store, settings, recent, persons)
        return consented(caller, found).scope(caller.facility)
    if caller.role == Role.PATIENT and caller.patient:
        own = Named(national_ids={caller.patient})
        persons = await named_persons(store, settings, recent, own)
        return Scope(sees=frozenset({SHARED}).union(*(p.keys() for p in persons)))
    if caller.role == Role.ADMIN:
        return Scope(sees=frozenset({SHARED}))
    return Scope(sees=frozenset())


def named_in(request: Request, national_system: str) -> Named:
    """Return the patients a request names by its path and search parameters."""
    named = Named()
    resource_type = request.path_params.get("resource_type")
    resource_id = request.path_params.get("resource_id")
    if "patient_id" in request.path_params:
        resource_type, resource_id = "Patient", request.path_params["patient_id"]
    if resource_type == "Patient" and resource_id:
        named.patients.add(resource_id)
    elif resource_type and resource_id:
        named.records.add(f"{resource_type}/{resource_id}")
    for name, value in request.query_params.multi_items():
        base, _, chained = name.partition(".")
        base = base.split(":", 1)[0]
        for item in value.split(","):
            if chained.split(":", 1)[0] == "identifier" and base in _PATIENT_PARAMS:
                named.national_ids.update(_national(item, national_system))
            elif chained:
                continue
            elif base in _PATIENT_PARAMS:
                named.patients.update(_patient_id(item))
            elif resource_type == "Patient" and base == "_id":
                named.patients.add(item)
            elif resource_type == "Patient" and base == "identifier":
                named.national_ids.update(_national(item, national_system))
    return named


def _patient_id(value: str) -> list[str]:
    """Return the Patient id a reference search value names: "Patient/x", a URL ending so,
    or a bare id."""
    parts = value.strip().split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return [parts[-1]] if parts[-1] else []
    if "_history" in parts and parts.index("_history") >= 2:
        at = parts.index("_history")
        return [parts[at - 1]] if parts[at - 2] == "Patient" else []
    return [parts[0]] if len(parts) == 1 and parts[0] else []


def _national(value: str, national_system: str) -> list[str]:
    system, bar, code = value.rpartition("|")
    return [code] if bar and system == national_system and code else []


async def persons_of(store: ResourceStore, settings: Settings, named: Named) -> list[Person]:
    """Return the persons a request names, each with all their Patient records."""
    patients = set(list(named.patients)[:MAX_NAMED])
    if named.records:
        probe = {"_id": {"$in": sorted(named.records)[:MAX_NAMED]}}
        for stored in await _probe(store, probe, {"_hub.sv": 1}):
            keys = stored.doc["_hub"].get("sv") or []
            prefix = len(_PATIENT_PREFIX)
            patients.update(k[prefix:] for k in keys if k.startswith(_PATIENT_PREFIX))
    system = settings.national_id_system
    national: dict[str, set[str]] = {n: set() for n in list(named.national_ids)[:MAX_NAMED]}
    alone: set[str] = set()
    if patients:
        probe = {"_id": {"$in": [f"Patient/{p}" for p in sorted(patients)[:MAX_NAMED]]}}
        for stored in await _probe(store, probe, {"identifier": 1, "id": 1}):
            ids = national_ids(system, stored)
            for value in ids:
                national.setdefault(value, set()).add(stored.id)
            if not ids:
                alone.add(stored.id)
    if national:
        keys = [national_id_key(system, value) for value in national]
        # `_hub.sv` first: the embedded server looks a filter up by its first indexed field.
        by_key: dict[str, Any] = {"_hub.sv": {"$in": keys}, "resourceType": "Patient"}
        for stored in await _probe(store, by_key, {"identifier": 1, "id": 1}):
            for value in national_ids(system, stored):
                if value in national:
                    national[value].add(stored.id)
    persons = [Person(tuple(sorted(ids)), value) for value, ids in national.items() if ids]
    return persons + [Person((p,)) for p in sorted(alone)]


async def named_persons(
    store: ResourceStore, settings: Settings, recent: "Recent", named: Named
) -> list[Person]:
    """Return the persons a request names, each named patient, citizen ID and record looked
    up (or remembered) on its own, so that requests naming one patient differently share."""
    items = [Named(patients={p}) for p in sorted(named.patients)[:MAX_NAMED]]
    items += [Named(national_ids={n}) for n in sorted(named.national_ids)[:MAX_NAMED]]
    items += [Named(records={r}) for r in sorted(named.records)[:MAX_NAMED]]

    async def lookup(item: Named) -> list[Person]:
        changes = store.changes

        async def find() -> list[Person]:
            persons = await persons_of(store, settings, item)
            for person in persons:  # named another way, the same person is known now too
                for other in person.names():
                    recent.put(other.key(), changes, [person])
            return persons

        found: list[Person] = await recent.get(item.key(), changes, find)
        return found

    found = await asyncio.gather(*(lookup(item) for item in items))
    return list(dict.fromkeys(person for persons in found for person in persons))


async def policy_of(store: ResourceStore, settings: Settings, person: Person) -> Policy | None:
    """Return the policy of a person's active Consents (None when one cannot be read: it
    might deny)."""
    # By the Consents' own patient key: the compartment key would find every record of theirs.
    keys = compartment_keys(list(person.patients), ["Consent"])
    probe = {"_hub.sv": {"$in": keys}, "resourceType": "Consent"}
    consents = [s.resource for s in await _probe(store, probe, None)]
    references = organization_references(consents)
    organizations = await facility_codes(store, settings.facility_system, references)
    try:
        return Policy.from_consents(
            consents,
            organizations,
            settings.consent_default,
            facility_system=settings.facility_system,
            zone=settings.zone,
        )
    except MalformedConsent as error:
        log.warning("unreadable consent of %s: %s", person.patients, error)
        return None


async def policies(
    store: ResourceStore, settings: Settings, recent: "Recent", persons: list[Person]
) -> list[tuple[Person, Policy | None]]:
    """Return each person with their policy, looked up (or remembered) person by person."""

    def lookup(person: Person) -> Awaitable[Policy | None]:
        key = ("policy", person.patients)
        return recent.get(key, store.changes, lambda: policy_of(store, settings, person))

    found = await asyncio.gather(*(lookup(person) for person in persons))
    return list(zip(persons, found, strict=True))


def consented(caller: Caller, found: list[tuple[Person, Policy | None]]) -> Consented:
    """Return what the clinician may see now of the persons' records held by other
    facilities: what each person's policy grants their facility for their purpose."""
    access = Access(
        facility=caller.facility or "",
        at=datetime.now(UTC),
        purpose=caller.purpose or "TREAT",
        break_glass=caller.break_glass,
    )
    whole: set[str] = set()
    partly: list[tuple[frozenset[str], Grant]] = []
    for person, policy in found:
        grant = policy.grant(access) if policy is not None else None
        if grant is None or grant.condition == FALSE:
            continue  # an unreadable consent hides everything held elsewhere
        if grant.everything:
            whole |= person.keys()
        else:
            partly.append((person.keys(), grant))
    return Consented(frozenset(whole), tuple(partly))


class Recent:
    """The persons and policies of recent requests, kept `seconds` to spare their database
    reads: a clinician reads one patient many times in a row.

    Any Patient, Consent or Organization written through this process empties it
    (`ResourceStore.changes`); one written through another hub process on the same database
    is seen within `seconds`. Only which persons and consents apply is kept: the records'
    own visibility keys are read fresh by every query.
    """

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds = seconds
        self.size = size
        self.entries: OrderedDict[Any, tuple[float, int, Any]] = OrderedDict()

    async def get(self, key: Any, changes: int, compute: Callable[[], Awaitable[Any]]) -> Any:
        """Return the kept value of a key, computing and keeping it when absent or stale."""
        if self.seconds <= 0:
            return await compute()
        now = time.monotonic()
        kept = self.entries.get(key)
        if kept is not None and kept[1] == changes and now - kept[0] < self.seconds:
            self.entries.move_to_end(key)
            return kept[2]
        value = await compute()
        self.put(key, changes, value, now)
        return value

    def put(self, key: Any, changes: int, value: Any, at: float | None = None) -> None:
        """Keep a value, found when the store had committed `changes`."""
        if self.seconds <= 0:
            return
        self.entries[key] = (time.monotonic() if at is None else at, changes, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


async def _probe(
    store: ResourceStore, query: dict[str, Any], projection: dict[str, Any] | None
) -> list[Stored]:
    """Read what the hub needs to decide what a caller may see; never shown to the caller."""
    if projection is not None:
        projection = {**projection, "resourceType": 1, "_hub.del": 1}
    return await store.find(query, UNRESTRICTED, projection=projection)
