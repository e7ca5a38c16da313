"""The one place through which every store query is scoped to what its caller may see."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
# The fields a scope's `check` reads, added to the projection of a read that has one.
CHECKED_FIELDS = ("resourceType", FACILITY_FIELD, SEE_FIELD, "_hub.labels")
_COMPARTMENT_PREFIX = f"{COMPARTMENT}Patient/"


def facility_key(code: str) -> str:
    """Return the visibility key of the records a facility holds."""
    return f"f:{code}"


def patient_key(patient_id: str) -> str:
    """Return the visibility key of a Patient record and of what belongs to it."""
    return f"p:{patient_id}"


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


@dataclass(frozen=True)
class Scope:
    """Whose records a query may touch: every read of the store passes through `apply`, and
    what it finds through `admits`.

    - Unrestricted (no facility, `sees` None): everything; only a hub that does not require
      tokens, and the hub's own reads that decide what a caller may see, use it.
    - A facility (`sees` None): the records attributed to it, as a facility system sees.
    - `sees`: the records carrying one of these visibility keys (and the facility's, if any):
      shared reference data, the records of the patients the caller may see. `check`, when
      given, is a last test of each record found (what a patient's consent allows of a
      person's records, by type and security label); it reads only CHECKED_FIELDS.
    Outside the scope a record looks absent. The database filter is one field more in the
    query (never a top-level operator), so the query's own index still serves it.
    """

    facility: str | None = None
    sees: frozenset[str] | None = None
    check: Callable[[Mapping[str, Any]], bool] | None = field(default=None, compare=False)

    @property
    def unrestricted(self) -> bool:
        """Tell whether the scope lets a query see everything."""
        return self.facility is None and self.sees is None

    def apply(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to this scope."""
        if self.unrestricted:
            return query
        if self.sees is None:
            return {**query, FACILITY_FIELD: self.facility}
        keys = self.sees | ({facility_key(self.facility)} if self.facility else set())
        return {**query, SEE_FIELD: {"$in": sorted(keys)}}

    def admits(self, doc: Mapping[str, Any]) -> bool:
        """Tell whether a record the narrowed query found passes the scope's last test."""
        return self.check is None or self.check(doc)

    def projection(self, projection: dict[str, Any] | None) -> dict[str, Any] | None:
        """Return a read's projection with the fields `admits` needs."""
        if projection is None or self.check is None:
            return projection
        wanted = [f for f in CHECKED_FIELDS if f.split(".")[0] not in projection]
        return {**projection, **dict.fromkeys(wanted, 1)}

    def outside(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to what lies outside this scope's own facility (nothing
        if it has none): only for telling a writer that an id is taken, never for reading a
        resource."""
        if self.facility is None:
            return {**query, "_id": {"$in": []}}
        return {**query, FACILITY_FIELD: {"$ne": self.facility}}


UNRESTRICTED = Scope()
