"""The one person resolver: which Patient records are one person, whichever facility holds them.

A person is the Patient records that carry the same national identifier (the citizen ID in
Vietnam, the NIK in Indonesia: `EHRHUB_NATIONAL_ID_SYSTEM`, of that system only); a record
without one is a person of its own. A facility's Patient.link is not followed: writing a link
would let a facility join its record to another facility's person. The client registry's
reviewed links will be read here, and nowhere else.

Consent, `$everything`, compartment search and the audit trail all ask this resolver.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hub.identity.person import national_id_key, national_ids
from hub.store.resources import ResourceStore, Stored
from hub.store.scope import UNRESTRICTED, patient_key

# More patients than this named in one request are not widened to their persons.
MAX_NAMED = 20


@dataclass(frozen=True)
class Person:
    """The Patient records of one person (one national ID, or one record without any)."""

    patients: tuple[str, ...]
    national_id: str | None = None

    def keys(self) -> frozenset[str]:
        """Return the visibility keys of every record of this person."""
        return frozenset(patient_key(p) for p in self.patients)


class Recent:
    """Answers of recent requests, kept `seconds` to spare their database reads: a clinician
    reads one patient many times in a row.

    Any Patient, Consent or Organization written through this process empties it
    (`ResourceStore.changes`); one written through another hub process on the same database
    is seen within `seconds`. Only who is whom and which consents apply are kept: the
    records themselves are read fresh by every query.
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


class Persons:
    """Resolve Patient ids and national IDs to persons, remembering recent answers."""

    def __init__(self, store: ResourceStore, national_id_system: str, recent: Recent) -> None:
        self.store = store
        self.system = national_id_system
        self.recent = recent

    async def of_patients(self, patient_ids: Iterable[str]) -> dict[str, Person]:
        """Return the person of each Patient id (one of its own when no such Patient exists)."""
        wanted = sorted(set(patient_ids))
        found = await asyncio.gather(*(self._of_patient(p) for p in wanted))
        return dict(zip(wanted, found, strict=True))

    async def same_person(self, patient_id: str) -> list[str]:
        """Return the ids of every Patient record of a patient's person, the patient's first."""
        person = (await self.of_patients([patient_id]))[patient_id]
        return [patient_id, *(p for p in person.patients if p != patient_id)]

    async def of_national_id(self, value: str) -> Person | None:
        """Return the person carrying a national ID, or None if no Patient carries it."""
        changes = self.store.changes

        async def find() -> Person | None:
            patients = await self._carrying(value)
            return Person(tuple(sorted(patients)), value) if patients else None

        person: Person | None = await self.recent.get(("nid", value), changes, find)
        return person

    async def _of_patient(self, patient_id: str) -> Person:
        changes = self.store.changes

        async def find() -> Person:
            found = await _probe(self.store, {"_id": f"Patient/{patient_id}"})
            ids = [v for s in found if not s.deleted for v in national_ids(self.system, s)]
            if not ids:
                return Person((patient_id,))
            # A record carrying two national IDs joins both: neither may see less of it.
            patients = {patient_id}
            for value in sorted(set(ids)):
                patients |= await self._carrying(value)
            return Person(tuple(sorted(patients)), sorted(set(ids))[0])

        person: Person = await self.recent.get(("patient", patient_id), changes, find)
        return person

    async def _carrying(self, value: str) -> set[str]:
        """Return the ids of the current Patient records carrying a national ID."""
        # `_hub.sv` first: the embedded server looks a filter up by its first indexed field.
        query = {"_hub.sv": national_id_key(self.system, value), "resourceType": "Patient"}
        return {s.id for s in await _probe(self.store, query) if not s.deleted}


async def _probe(store: ResourceStore, query: dict[str, Any]) -> list[Stored]:
    """Read what the hub needs to tell who is whom; never shown to a caller."""
    projection = {"identifier": 1, "id": 1, "resourceType": 1, "_hub.del": 1, "_hub.v": 1}
    return await store.find(query, UNRESTRICTED, projection=projection)
