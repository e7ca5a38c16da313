"""The one place through which every store query is scoped to what its caller may see.

A scope narrows each query in the database by the records' visibility keys (index-backed),
then hands every version found to its judge: the one access decision (hub/access/decision.py)
that says whether the caller may see it. Nothing is shown, counted or followed that the judge
did not admit.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.search.extract import COMPARTMENT

# The stored field naming the facility a record is attributed to (see ResourceStore.write).
FACILITY_FIELD = "_hub.fac"
# The stored field of a record's visibility keys (`visibility_keys`), written with it.
SEE_FIELD = "_hub.see"
# Reference data that is no one's health record: every caller with a token may read it.
SHARED_TYPES = frozenset(
    {
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "Endpoint",
        "Medication",
        "Substance",
    }
)
SHARED = "shared"
_COMPARTMENT_PREFIX = f"{COMPARTMENT}Patient/"
_PATIENT_KEY = "p:"
# The fields a judge reads of a record when it does not read it whole.
_JUDGED_FIELDS = ("resourceType", "id", "_hub", "meta")


def facility_key(code: str) -> str:
    """Return the visibility key of the records a facility holds."""
    return f"f:{code}"


def patient_key(patient_id: str) -> str:
    """Return the visibility key of a Patient record and of what belongs to it."""
    return f"{_PATIENT_KEY}{patient_id}"


def patients_of(see: Sequence[str]) -> frozenset[str]:
    """Return the ids of the Patients whose records a version is, from its visibility keys."""
    start = len(_PATIENT_KEY)
    return frozenset(k[start:] for k in see if k.startswith(_PATIENT_KEY))


def visibility_keys(
    resource_type: str, resource_id: str, facility: str | None, search_keys: list[str]
) -> list[str]:
    """Return a record's visibility keys: its facility, "shared" for reference data, and each
    Patient whose record it is (itself for a Patient; from its compartment search keys)."""
    keys = {facility_key(facility)} if facility else set()
    if resource_type in SHARED_TYPES:
        keys.add(SHARED)
    if resource_type == "Patient":
        keys.add(patient_key(resource_id))
    start = len(_COMPARTMENT_PREFIX)
    keys.update(patient_key(k[start:]) for k in search_keys if k.startswith(_COMPARTMENT_PREFIX))
    return sorted(keys)


Version = Mapping[str, Any]


class Judge(Protocol):
    """The access decision of one request, as the store asks it."""

    needs_content: bool  # whether deciding reads the records' content, not only `_hub`

    async def admit(self, versions: Sequence[tuple[Version, Version | None]]) -> list[bool]:
        """Tell, for each (version, its current version or None if it is current), whether
        the caller may see it."""
        ...


@dataclass(frozen=True)
class Scope:
    """Whose records a query may touch: every read of the store narrows its query with
    `apply` and admits what it found with `admit`.

    - Unrestricted (no facility, `sees` None, no judge): everything; only the hub's own reads
      that decide what a caller may see use it.
    - A facility (`sees` None): the records attributed to it, as a facility system sees.
    - `sees`: the records carrying one of these visibility keys (and the facility's, if any):
      shared reference data, the records of the persons the request may reach.
    - `judge`: the caller's access decision, asked about every version the query finds.
    The database filter is one field more in the query (never a top-level operator), so the
    query's own index still serves it; outside the scope a record looks absent.
    """

    facility: str | None = None
    sees: frozenset[str] | None = None
    judge: Judge | None = field(default=None, compare=False)

    @property
    def unrestricted(self) -> bool:
        """Tell whether the scope lets a query see everything."""
        return self.facility is None and self.sees is None and self.judge is None

    def apply(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to this scope."""
        if self.facility is None and self.sees is None:
            return query
        if self.sees is None:
            return {**query, FACILITY_FIELD: self.facility}
        keys = self.sees | ({facility_key(self.facility)} if self.facility else set())
        return {**query, SEE_FIELD: {"$in": sorted(keys)}}

    async def admit(self, versions: Sequence[tuple[Version, Version | None]]) -> list[bool]:
        """Tell, for each version found (with its current one when it is not current),
        whether the caller may see it."""
        if self.judge is None:
            return [True] * len(versions)
        return await self.judge.admit(versions)

    async def admitted(self, docs: Sequence[Version]) -> list[Version]:
        """Return the current versions found that the caller may see, in order."""
        verdicts = await self.admit([(doc, None) for doc in docs])
        return [doc for doc, shown in zip(docs, verdicts, strict=True) if shown]

    def projection(self, projection: dict[str, Any] | None) -> dict[str, Any] | None:
        """Return a read's projection with what the judge needs (the whole record when it
        reads content)."""
        if projection is None or self.judge is None:
            return projection
        if self.judge.needs_content:
            return None
        kept = {k: v for k, v in projection.items() if k.split(".")[0] not in _JUDGED_FIELDS}
        return kept | dict.fromkeys(_JUDGED_FIELDS, 1)

    def outside(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to what lies outside this scope's own facility (all of it
        for a scope without one, whose judge then says what is its caller's): only for telling
        a writer that an id is taken, never for reading a resource."""
        if self.unrestricted:
            return {**query, "_id": {"$in": []}}
        if self.facility is None:
            return query
        return {**query, FACILITY_FIELD: {"$ne": self.facility}}


UNRESTRICTED = Scope()
