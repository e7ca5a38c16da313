"""The one place through which every store query is scoped to what its caller may see."""

from dataclasses import dataclass
from typing import Any

# The stored field naming the facility a record is attributed to (see ResourceStore.write).
FACILITY_FIELD = "_hub.fac"


@dataclass(frozen=True)
class Scope:
    """Whose records a query may touch: every read of the store passes through `apply`.

    An unrestricted scope (no token while tokens are optional, or a role without a facility
    of its own) sees everything; a facility system's scope sees the records attributed to
    its facility and nothing else: another facility's records look absent. Consent will
    narrow the filter here, and only here.
    """

    facility: str | None = None

    def apply(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to this scope."""
        if self.facility is None:
            return query
        return {**query, FACILITY_FIELD: self.facility}

    def outside(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to what lies outside this scope (nothing if unrestricted):
        only for telling a writer that an id is taken, never for reading a resource."""
        if self.facility is None:
            return {**query, "_id": {"$in": []}}
        return {**query, FACILITY_FIELD: {"$ne": self.facility}}


UNRESTRICTED = Scope()
