"""Running a parsed query: resolve chains, find candidates by one index, keep exact matches."""

from hub.fhir.outcome import HubError, TooCostly
from hub.fhir.result import Context
from hub.search import plan
from hub.search.extract import Reference, values
from hub.search.match import matches
from hub.search.query import Clause, Query
from hub.search.registry import registry
from hub.store.resources import Stored, key


async def find(ctx: Context, query: Query, extra: list[plan.Driver] | None = None) -> list[Stored]:
    """Return the current resources meeting every clause of the query, in no set order."""
    normalise_references(ctx, query)
    for clause in query.clauses:
        if clause.chain is not None:
            await _resolve(ctx, query.resource_type, clause)
    drivers = plan.ranked(query.resource_type, query.clauses, extra or [])
    # Nothing indexable: every resource of the type, by the type-time index.
    for chosen in drivers or [plan.Driver(0, [{}])]:
        found = await _candidates(ctx, query.resource_type, chosen)
        if found is not None:
            return [s for s in found.values() if matches(query, s.doc)]
        # Too many by this index: the next most selective clause may find fewer.
    cap = ctx.settings.max_search_candidates
    raise TooCostly(
        f"This {query.resource_type} search would read more than {cap:,} resources; "
        "add criteria that narrow it (a patient, an identifier, a date range)"
    )


async def find_each(ctx: Context, queries: list[Query]) -> list[list[Stored] | None]:
    """Answer together, with one index read, the queries whose most selective clause names
    exact index keys (identifiers, codes, references); None for a query that needs `find`.

    Each query keeps only the candidates its own keys found that meet all its clauses, so it
    gets what `find` would give it; a transaction's conditional entries save a round trip each.
    """
    keys = [_exact_keys(ctx, q) for q in queries]
    wanted = sorted({k for ks in keys if ks for k in ks})
    if not wanted:
        return [None] * len(queries)
    cap = ctx.settings.max_search_candidates
    # Index keys lead with the resource type, so one read serves queries on several types.
    found = await ctx.store.find(
        {"_hub.sv": {"$in": wanted}}, ctx.scope, ctx.session, None, cap + 1
    )
    if len(found) > cap:
        return [None] * len(queries)  # too many for one read; each query drives on its own
    answers: list[list[Stored] | None] = []
    for query, own in zip(queries, keys, strict=True):
        if not own:
            answers.append(None)
            continue
        answers.append(
            [
                s
                for s in found
                if s.resource_type == query.resource_type
                and not own.isdisjoint(s.doc["_hub"].get("sv", ()))
                and matches(query, s.doc)
            ]
        )
    return answers


def _exact_keys(ctx: Context, query: Query) -> set[str] | None:
    """Return the index keys of the query's driving clause, or None unless they are exact keys
    (a chain, a range or a prefix drives on its own)."""
    if any(c.chain is not None or c.resolved is not None for c in query.clauses):
        return None
    normalise_references(ctx, query)
    try:
        drivers = plan.ranked(query.resource_type, query.clauses, [])
    except HubError:
        return None  # `find` refuses the query when its turn comes, after earlier ones
    if not drivers or not drivers[0].predicates:
        return None
    keys: set[str] = set()
    for predicate in drivers[0].predicates:
        value = predicate.get("_hub.sv") if len(predicate) == 1 else None
        if isinstance(value, str):
            keys.add(value)
        elif isinstance(value, dict) and list(value) == ["$in"]:
            keys.update(value["$in"])
        else:
            return None
    return keys


async def _candidates(
    ctx: Context, resource_type: str, chosen: plan.Driver
) -> dict[str, Stored] | None:
    """Return the resources a driver's predicates find, or None if they exceed the cap."""
    cap = ctx.settings.max_search_candidates
    found: dict[str, Stored] = {}
    for predicate in chosen.predicates:
        # The driving predicate first: the embedded server uses the first indexed field.
        query = {**predicate, "resourceType": resource_type}
        for stored in await ctx.store.find(query, ctx.scope, ctx.session, None, cap + 1):
            found.setdefault(stored.doc["_id"], stored)
        if len(found) > cap:
            return None
    return found


def normalise_references(ctx: Context, query: Query) -> None:
    """Turn absolute references to this hub into the relative ones it stores."""
    base = ctx.base.rstrip("/") + "/"
    for clause in query.clauses:
        if clause.param.type == "reference" and clause.chain is None and not clause.modifier:
            clause.values = [
                v[len(base) :] if isinstance(v, str) and v.startswith(base) else v
                for v in clause.values
            ]


async def _resolve(ctx: Context, resource_type: str, clause: Clause) -> None:
    """Answer a chained or `_has` clause's sub-queries, leaving what they point at."""
    resolved: set[str] = set()
    for sub in clause.values:
        found = await find(ctx, sub)
        if clause.has_param:
            back = registry().params(sub.resource_type)[clause.has_param]
            for stored in found:
                for ref in values(stored.doc, back):
                    if isinstance(ref, Reference) and ref.type == resource_type and ref.reference:
                        resolved.add(ref.reference.rsplit("/", 1)[-1])
        else:
            resolved.update(key(s.resource_type, s.id) for s in found)
    clause.resolved = resolved
