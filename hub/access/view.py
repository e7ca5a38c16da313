"""What one request's caller may see: the scope every store read of the request carries.

`AccessControl.scope` turns a caller and the patients their request names into a Scope: the
visibility keys that narrow each query in the database, and a judge that asks the one access
decision (hub/access/decision.py) about every version found, with the persons and consent
policies it needs resolved first (remembered a little while: `EHRHUB_CONSENT_CACHE_SECONDS`).
"""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace

from fastapi import Request

from consent import Policy
from hub.access.decision import Facts, Viewer, decide, needs_persons
from hub.access.named import Named, named_in
from hub.access.persons import MAX_NAMED, Person, Persons, Recent
from hub.access.policies import policy_of
from hub.auth.caller import UNRESTRICTED_CALLER, Caller
from hub.auth.roles import Role
from hub.core.clock import Clock
from hub.settings import Settings
from hub.store.resources import ResourceStore, Stored
from hub.store.scope import SHARED, UNRESTRICTED, Scope, Version


class AccessControl:
    """The persons, policies and scopes of the requests of one hub process."""

    def __init__(
        self, store: ResourceStore, settings: Settings, clock: Clock, recent: Recent
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.recent = recent
        self.persons = Persons(store, settings.national_id_system, recent)

    async def scope(self, caller: Caller, named: Named) -> Scope:
        """Return the scope of a caller's request that names these patients."""
        if not caller.authenticated:
            return UNRESTRICTED
        viewer = Viewer(
            role=caller.role,
            at=self.clock.now(),
            facility=caller.facility,
            practitioner=caller.practitioner,
            purpose=caller.purpose or "TREAT",
        )
        if caller.role == Role.FACILITY:
            return Scope(facility=caller.facility, judge=Judge(viewer, self))
        if caller.role == Role.CLINICIAN and caller.facility:
            persons = await self.named_persons(named)
            emergency = frozenset[str]()
            declared = caller.break_glass_patient
            if caller.break_glass and declared:
                # The emergency is the declared person's only (docs/security.md).
                emergency = await self._patients_of(declared.removeprefix("Patient/"))
            reached = frozenset(p for person in persons for p in person.patients)
            viewer = replace(viewer, named=reached, emergency_for=emergency)
            sees = frozenset({SHARED}).union(*(person.keys() for person in persons))
            return Scope(facility=caller.facility, sees=sees, judge=Judge(viewer, self))
        if caller.role == Role.PATIENT and caller.patient:
            person = await self.persons.of_national_id(caller.patient)
            own = frozenset(person.patients) if person else frozenset[str]()
            sees = frozenset({SHARED}) | (person.keys() if person else frozenset())
            return Scope(sees=sees, judge=Judge(replace(viewer, own=own), self))
        if caller.role == Role.ADMIN:
            return Scope(sees=frozenset({SHARED}), judge=Judge(viewer, self))
        return Scope(sees=frozenset(), judge=Judge(viewer, self))

    async def _patients_of(self, patient_id: str) -> frozenset[str]:
        """Return the Patient ids of the person a Patient record belongs to."""
        return frozenset((await self.persons.of_patients([patient_id]))[patient_id].patients)

    async def named_persons(self, named: Named) -> list[Person]:
        """Return the persons a request names, each with all their Patient records."""
        patients = set(sorted(named.patients)[:MAX_NAMED])
        if named.records:
            keys = sorted(named.records)[:MAX_NAMED]
            for stored in (await self.store.currents(keys, UNRESTRICTED)).values():
                patients |= stored.patients
        found = list((await self.persons.of_patients(patients)).values())
        for value in sorted(named.national_ids)[:MAX_NAMED]:
            person = await self.persons.of_national_id(value)
            if person is not None:
                found.append(person)
        return list(dict.fromkeys(found))

    async def policies(self, persons: Iterable[Person]) -> dict[Person, Policy | None]:
        """Return each person's consent policy, looked up (or remembered) person by person."""
        wanted = list(dict.fromkeys(persons))

        async def lookup(person: Person) -> Policy | None:
            key = ("policy", person.patients)
            policy: Policy | None = await self.recent.get(
                key, self.store.changes, lambda: policy_of(self.store, self.settings, person)
            )
            return policy

        found = await asyncio.gather(*(lookup(p) for p in wanted))
        return dict(zip(wanted, found, strict=True))


class Judge:
    """The access decision of one request, asked by the store about what its queries find."""

    def __init__(self, viewer: Viewer, control: AccessControl) -> None:
        self.viewer = viewer
        self.control = control
        # Consents may speak of codes, dates and related records: a clinician's decisions
        # read the records whole.
        self.needs_content = viewer.role == Role.CLINICIAN

    async def admit(self, versions: Sequence[tuple[Version, Version | None]]) -> list[bool]:
        """Tell, for each version (with its current one unless current), whether it is shown."""
        pairs = [(Stored(dict(v)), Stored(dict(c)) if c is not None else None) for v, c in versions]
        needed: set[str] = set()
        for pair in pairs:
            for stored in pair:
                if stored is not None and needs_persons(self.viewer, stored):
                    needed |= stored.patients
        persons = await self.control.persons.of_patients(needed) if needed else {}
        policies = await self.control.policies(persons.values()) if persons else {}
        facts = Facts(persons, policies)
        return [decide(self.viewer, facts, version, current) for version, current in pairs]


async def scope_of(request: Request) -> Scope:
    """Return the scope of a request's caller (set by `authenticate`)."""
    caller: Caller = getattr(request.state, "caller", UNRESTRICTED_CALLER)
    control: AccessControl = request.app.state.access
    system = control.settings.national_id_system
    named = named_in(request.path_params, request.query_params.multi_items(), system)
    return await control.scope(caller, named)
