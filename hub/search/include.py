"""`_include` and `_revinclude`: resources a page points at, and resources pointing at it.
https://hl7.org/fhir/R4/search.html#include
"""

from dataclasses import dataclass

from hub.fhir.outcome import BadRequest
from hub.fhir.resource_types import R4_RESOURCE_TYPES
from hub.fhir.result import Context
from hub.search import engine
from hub.search.extract import Reference, values
from hub.search.query import Clause, Query
from hub.search.registry import SearchParam, registry
from hub.store.resources import Stored, key

# Rounds of :iterate, and resources added in all, before the hub stops following references.
MAX_ROUNDS = 4
MAX_INCLUDED = 1000


@dataclass(frozen=True)
class Include:
    """One `_include` or `_revinclude` value: `Type:param[:target]`."""

    source_type: str
    params: tuple[SearchParam, ...]
    target: str
    reverse: bool
    iterate: bool


def parse_includes(params: list[tuple[str, str]]) -> list[Include]:
    """Parse every `_include` and `_revinclude` parameter."""
    found = []
    for name, raw in params:
        base, _, modifier = name.partition(":")
        if base not in ("_include", "_revinclude"):
            continue
        if modifier not in ("", "iterate", "recurse"):
            raise BadRequest(f"'{name}' has an unknown modifier", expression=name)
        for text in raw.split(","):
            parts = text.split(":")
            if len(parts) not in (2, 3) or parts[0] not in R4_RESOURCE_TYPES:
                raise BadRequest(
                    f"{base} value '{text}' is not of the form Type:parameter[:targetType]",
                    expression=name,
                )
            source_type, code = parts[0], parts[1]
            known = registry().params(source_type)
            if code == "*":
                chosen = tuple(p for p in known.values() if p.type == "reference")
            elif code in known and known[code].type == "reference":
                chosen = (known[code],)
            else:
                raise BadRequest(
                    f"{base}: '{code}' is not a reference parameter of {source_type}",
                    expression=name,
                )
            target = parts[2] if len(parts) == 3 else ""
            reverse = base == "_revinclude"
            found.append(Include(source_type, chosen, target, reverse, bool(modifier)))
    return found


async def included(ctx: Context, page: list[Stored], includes: list[Include]) -> list[Stored]:
    """Return the resources the includes add to a page, each once and none already on it."""
    seen = {s.doc["_id"] for s in page}
    added: list[Stored] = []
    frontier = page
    for round_ in range(MAX_ROUNDS):
        wanted = [i for i in includes if round_ == 0 or i.iterate]
        new: list[Stored] = []
        for inc in wanted:
            follow = _reverse if inc.reverse else _forward
            found = await follow(ctx, frontier, inc)
            for stored in found:
                if stored.doc["_id"] not in seen and len(added) + len(new) < MAX_INCLUDED:
                    seen.add(stored.doc["_id"])
                    new.append(stored)
        if not new:
            break
        added += new
        frontier = new
    return added


async def _forward(ctx: Context, sources: list[Stored], inc: Include) -> list[Stored]:
    keys: set[str] = set()
    for stored in sources:
        if stored.resource_type != inc.source_type:
            continue
        for param in inc.params:
            for ref in values(stored.doc, param):
                if not isinstance(ref, Reference) or not ref.reference or not ref.type:
                    continue
                if ref.reference.startswith(("http:", "https:", "urn:")):
                    continue
                if not inc.target or ref.type == inc.target:
                    keys.add(ref.reference)
    found = await ctx.store.currents(sorted(keys), ctx.scope, ctx.session)
    return [s for s in found.values() if not s.deleted]


async def _reverse(ctx: Context, targets: list[Stored], inc: Include) -> list[Stored]:
    refs = {
        key(s.resource_type, s.id)
        for s in targets
        if not inc.target or s.resource_type == inc.target
    }
    if not refs:
        return []
    found: list[Stored] = []
    for param in inc.params:
        clause = Clause(f"_revinclude={inc.source_type}:{param.code}", param, resolved=refs)
        found += await engine.find(ctx, Query(inc.source_type, [clause]))
    return [s for s in found if not s.deleted]
