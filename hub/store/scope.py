"""The one place through which every store query is scoped to what its caller may see."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scope:
    """Whose records a query may touch: every read of the store passes through `apply`.

    Until authentication lands every caller is unrestricted; facility scoping and consent
    will narrow the filter here, and only here.
    """

    facility: str | None = None

    def apply(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the query narrowed to this scope."""
        if self.facility is None:
            return query
        return {**query, "_hub.fac": self.facility}


UNRESTRICTED = Scope()
