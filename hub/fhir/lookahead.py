"""Reads that planning a commit's entries needs, done ahead in as few queries as possible.

Entry by entry, each conditional entry costs a search and each write a read of what it
replaces: a round trip each, which is most of what ingesting a hospital's Bundles costs.
Read ahead, one search answers every conditional entry whose criteria name exact index keys
(identifiers, codes, references) and one read fetches every resource the entries name by id.
Planning writes nothing until all entries are planned, so what it reads ahead is what it
would read entry by entry; whatever was not read ahead is read when asked for.
"""

from dataclasses import dataclass, field

from hub.fhir import conditional
from hub.fhir.conditional import Criteria
from hub.fhir.entry import Entry
from hub.fhir.outcome import HubError
from hub.fhir.result import Context
from hub.store.resources import Stored, key


@dataclass
class Reads:
    """What was read ahead, and the reads of what was not."""

    found: dict[str, list[Stored]] = field(default_factory=dict)  # criteria key -> matches
    current: dict[str, Stored | None] = field(default_factory=dict)  # store key -> version
    parsed: dict[int, tuple[Criteria, str] | None] = field(default_factory=dict)  # by id(entry)

    def criteria(self, entry: Entry) -> tuple[Criteria, str] | None:
        """Return a conditional entry's criteria and where errors about them point; else None."""
        if id(entry) not in self.parsed:
            self.parsed[id(entry)] = criteria(entry)
        return self.parsed[id(entry)]

    async def find_one(
        self, ctx: Context, criteria: Criteria, where: str, exclude: set[str]
    ) -> Stored | None:
        """Return the one current resource meeting the criteria, None, or raise 412."""
        found = self.found.get(criteria.key())
        if found is None:
            return await conditional.find_one(ctx, criteria, where, exclude)
        return conditional.one_of(found, where, exclude)

    async def current_of(self, ctx: Context, resource_type: str, resource_id: str) -> Stored | None:
        """Return a resource's current version (a tombstone if deleted), or None."""
        wanted = key(resource_type, resource_id)
        if wanted in self.current:
            return self.current[wanted]
        return await ctx.store.current(resource_type, resource_id, ctx.scope, ctx.session)


def criteria(entry: Entry) -> tuple[Criteria, str] | None:
    """Return a conditional entry's criteria and where errors about them point; else None."""
    target = entry.target
    if entry.method == "POST" and entry.if_none_exist:
        where = entry.where("request.ifNoneExist")
        return conditional.parse_criteria(target.resource_type, entry.if_none_exist, where), where
    if entry.method in ("PUT", "DELETE") and not target.id:
        where = entry.where("request.url")
        return conditional.parse_criteria(target.resource_type, target.query or "", where), where
    return None


async def read_ahead(ctx: Context, entries: list[Entry]) -> Reads:
    """Search for the conditional entries' matches, then read the resources entries write."""
    reads = Reads()
    conditions: list[tuple[Entry, Criteria]] = []
    for entry in entries:
        try:
            found = reads.criteria(entry)
        except HubError:
            continue  # planning the entry refuses it, in its turn
        if found is not None:
            conditions.append((entry, found[0]))
    if conditions:
        reads.found = await conditional.find_many(ctx, [c for _, c in conditions])
    wanted = [
        key(e.target.resource_type, e.target.id)
        for e in entries
        if e.method in ("PUT", "DELETE") and e.target.id
    ]
    for entry, c in conditions:
        if entry.method != "PUT" or reads.found.get(c.key()) != []:
            continue
        # A conditional update that matches nothing creates the resource under the body's id,
        # else under the id the hub made up for it: a new UUID, which names nothing stored (a
        # create relies on that too).
        body_id = (entry.resource or {}).get("id")
        if body_id:
            wanted.append(key(entry.target.resource_type, str(body_id)))
        else:
            reads.current[key(entry.target.resource_type, entry.new_id)] = None
    if wanted:
        found_by_key = await ctx.store.currents(wanted, ctx.scope, ctx.session)
        reads.current.update((k, found_by_key.get(k)) for k in wanted)
    return reads
