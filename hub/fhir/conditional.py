"""Criteria of conditional interactions (`If-None-Exist`, conditional update and delete).

Criteria are search parameters, answered by the search engine; a parameter the hub does not
know is refused here rather than ignored, since ignoring it would match the wrong resource.
https://hl7.org/fhir/R4/http.html#cond-update
"""

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from hub.fhir.outcome import BadRequest, PreconditionFailed
from hub.fhir.result import Context
from hub.search import engine
from hub.search.query import CONTROL, Query, parse
from hub.store.resources import Stored, key


@dataclass
class Criteria:
    """Parsed criteria and the canonical text that names them."""

    query: Query
    text: str

    def key(self) -> str:
        """Return a canonical text of these criteria, the same for the same criteria."""
        return self.text


def parse_criteria(resource_type: str, query: str, where: str) -> Criteria:
    """Parse a query string into criteria, refusing unknown or result-control parameters."""
    # Some clients send ifNoneExist as "Patient?identifier=...": the query part is what counts.
    pairs = parse_qsl(query.split("?", 1)[-1], keep_blank_values=True)
    if not pairs:
        raise BadRequest("Conditional interaction without criteria", expression=where)
    control = [name for name, _ in pairs if name in CONTROL]
    if control:
        raise BadRequest(
            f"'{control[0]}' controls a search result and cannot be a criterion", expression=where
        )
    parsed = parse(resource_type, pairs)
    if parsed.unknown:
        raise BadRequest(f"Conditional criterion: {parsed.unknown[0]}", expression=where)
    return Criteria(parsed, f"{resource_type}?{urlencode(sorted(pairs))}")


async def find(ctx: Context, criteria: Criteria) -> list[Stored]:
    """Return the current resources meeting the criteria."""
    return await engine.find(ctx, criteria.query)


async def find_many(ctx: Context, criteria: list[Criteria]) -> dict[str, list[Stored]]:
    """Return, by criteria key, the current resources meeting each of several criteria that
    the search engine can answer together; the others are left out, for `find`."""
    answers = await engine.find_each(ctx, [c.query for c in criteria])
    return {c.key(): found for c, found in zip(criteria, answers, strict=True) if found is not None}


def one_of(
    found: list[Stored], where: str, exclude: frozenset[str] | set[str] = frozenset()
) -> Stored | None:
    """Return the one match, None for no match, or raise 412 when several match.

    `exclude` holds keys of resources that the same transaction deletes first.
    """
    found = [s for s in found if key(s.resource_type, s.id) not in exclude]
    if len(found) > 1:
        raise PreconditionFailed(
            "The conditional criteria match more than one resource", expression=where
        )
    return found[0] if found else None


async def find_one(
    ctx: Context, criteria: Criteria, where: str, exclude: frozenset[str] | set[str] = frozenset()
) -> Stored | None:
    """Return the one match, None for no match, or raise 412 when several match."""
    return one_of(await find(ctx, criteria), where, exclude)
