"""Criteria of conditional interactions (`If-None-Exist`, conditional update, `?identifier=`).

Until the search issue generalises them, criteria are `_id` and `identifier` (token forms
`system|value`, `|value` and `value`); comma-separated values are OR, repeated parameters AND.
"""

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from hub.fhir.outcome import BadRequest, PreconditionFailed
from hub.fhir.result import Context
from hub.store.resources import Stored, identifier_keys, key

SUPPORTED = ("_id", "identifier")


@dataclass
class Criteria:
    """Parsed criteria: each inner list is one AND-ed parameter whose values are OR-ed."""

    resource_type: str
    ids: list[list[str]] = field(default_factory=list)
    identifiers: list[list[str]] = field(default_factory=list)

    def key(self) -> str:
        """Return a canonical text of these criteria, the same for the same criteria."""
        ids = "&".join(",".join(sorted(alts)) for alts in sorted(self.ids))
        idents = "&".join(",".join(sorted(alts)) for alts in sorted(self.identifiers))
        return f"{self.resource_type}?_id={ids}&identifier={idents}"

    def matches(self, stored: Stored) -> bool:
        """Tell whether a stored resource meets every criterion."""
        keys = set(identifier_keys(self.resource_type, stored.doc))
        return all(stored.id in alts for alts in self.ids) and all(
            keys.intersection(alts) for alts in self.identifiers
        )


def identifier_key(resource_type: str, token: str) -> str:
    """Return the index key of one identifier token."""
    if "|" in token:
        system, _, value = token.partition("|")
        return f"{resource_type}|{system}|{value}"
    return f"{resource_type}#{token}"


def parse_criteria(resource_type: str, query: str, where: str) -> Criteria:
    """Parse a query string into criteria, refusing what this hub cannot match on yet."""
    criteria = Criteria(resource_type)
    # Some clients send ifNoneExist as "Patient?identifier=...": the query part is what counts.
    pairs = parse_qsl(query.split("?", 1)[-1], keep_blank_values=True)
    for name, value in pairs:
        if name not in SUPPORTED:
            raise BadRequest(
                f"Conditional criterion '{name}' is not supported; "
                f"use one of {', '.join(SUPPORTED)}",
                expression=where,
            )
        values = [v for v in value.split(",") if v]
        if not values:
            raise BadRequest(f"Criterion '{name}' has no value", expression=where)
        if name == "_id":
            criteria.ids.append(values)
        else:
            criteria.identifiers.append([identifier_key(resource_type, v) for v in values])
    if not pairs:
        raise BadRequest("Conditional interaction without criteria", expression=where)
    return criteria


async def find(ctx: Context, criteria: Criteria, limit: int = 0) -> list[Stored]:
    """Return the current resources meeting the criteria, driven by the most selective index."""
    if criteria.ids:
        keys = [key(criteria.resource_type, i) for i in criteria.ids[0]]
        found = list((await ctx.store.currents(keys, ctx.scope, ctx.session)).values())
        found = [s for s in found if not s.deleted]
    else:
        found = await ctx.store.match_identifiers(
            criteria.resource_type, criteria.identifiers[0], ctx.scope, ctx.session
        )
    matched = [s for s in found if criteria.matches(s)]
    return matched[:limit] if limit else matched


async def find_one(
    ctx: Context, criteria: Criteria, where: str, exclude: frozenset[str] | set[str] = frozenset()
) -> Stored | None:
    """Return the one match, None for no match, or raise 412 when several match.

    `exclude` holds keys of resources that the same transaction deletes first.
    """
    found = await find(ctx, criteria, limit=2 + len(exclude))
    found = [s for s in found if key(s.resource_type, s.id) not in exclude]
    if len(found) > 1:
        raise PreconditionFailed(
            "The conditional criteria match more than one resource", expression=where
        )
    return found[0] if found else None
