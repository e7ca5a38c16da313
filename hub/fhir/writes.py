"""Writes of one or many resources, all or nothing: the engine under create, update, delete
and transaction. https://hl7.org/fhir/R4/http.html#trules
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure

from hub.auth.roles import Role
from hub.fhir import lookahead
from hub.fhir.attribution import check_claims, check_scopes, taken_message
from hub.fhir.consents import check_consents
from hub.fhir.entry import Entry, check, parse_etag
from hub.fhir.outcome import (
    BadRequest,
    BusinessRule,
    Conflict,
    Forbidden,
    HubError,
    MethodNotAllowed,
    PreconditionFailed,
)
from hub.fhir.profiling import check_profiles
from hub.fhir.result import Context, Result
from hub.store.resources import PERSON, Refused, Stored, VersionConflict, Write, key

log = logging.getLogger("ehrhub.writes")
_BACKOFF = 0.005  # seconds; the first retry waits up to this, later ones longer
# The order in which a transaction's entries are processed, by method.
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}


@dataclass
class Plan:
    """What the entries of one commit will do."""

    writes: list[Write] = field(default_factory=list)
    results: dict[int, Result] = field(default_factory=dict)
    # fullUrl -> "Type/id" for rewriting references between entries
    resolved: dict[str, str] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    written: dict[int, int] = field(default_factory=dict)  # entry index -> index in writes
    deleted: set[str] = field(default_factory=set)  # keys deleted by earlier entries
    reads: lookahead.Reads = field(default_factory=lookahead.Reads)
    # Criteria that matched nothing, claimed together once every entry is planned.
    claims: list[str] = field(default_factory=list)
    # The facility every write is attributed to: a facility system's own (Scope.facility).
    facility: str | None = None
    # PERSON when the person the records are about writes them through their own login.
    author: str | None = None

    def target(self, entry_index: int, entry: Entry, resource_key: str) -> None:
        """Record the resource an entry acts on, so that references to its fullUrl point
        there; refuse a second entry touching the same resource in one commit."""
        other = self.keys.setdefault(resource_key, entry_index)
        if other != entry_index:
            raise BadRequest(
                f"{resource_key} is touched by more than one entry of the same transaction",
                expression=entry.path or None,
            )
        if entry.full_url:
            self.resolved[entry.full_url] = resource_key

    def add(self, entry_index: int, write: Write, status: int) -> None:
        """Schedule a write whose stored result answers the entry."""
        self.written[entry_index] = len(self.writes)
        write.facility = self.facility
        write.author = self.author
        self.writes.append(write)
        self.results[entry_index] = Result(status, location=status == 201)


def refuse_audit_event(entry: Entry) -> None:
    """Refuse (405) any entry on AuditEvent: the audit trail is written by the hub alone, and
    read at GET /fhir/AuditEvent, whose access rules a Bundle entry would bypass."""
    if entry.url.split("?")[0].strip("/").split("/")[0] == "AuditEvent":
        raise MethodNotAllowed(
            f"{entry.method} AuditEvent is not supported: the audit trail is append-only and "
            "written by the hub alone",
            expression=entry.where("request.url") if entry.path else None,
        )


def _check_if_match(entry: Entry, previous: Stored | None) -> None:
    """Refuse the entry (412) unless its If-Match names the current version."""
    if entry.if_match is None:
        return
    wanted = parse_etag(entry.if_match, entry.where("request.ifMatch"))
    if previous is None or previous.version != wanted:
        have = f"version {previous.version}" if previous else "no such resource"
        raise PreconditionFailed(
            f"If-Match asks for version {wanted} of {entry.target.resource_type}, "
            f"but the server has {have}",
            expression=entry.where("request.ifMatch"),
        )


async def _plan_post(ctx: Context, i: int, entry: Entry, plan: Plan) -> None:
    rtype = entry.target.resource_type
    conditional = plan.reads.criteria(entry)
    if conditional is not None:
        criteria, where = conditional
        existing = await plan.reads.find_one(ctx, criteria, where, plan.deleted)
        if existing is not None:
            plan.target(i, entry, key(rtype, existing.id))
            plan.results[i] = Result(200, existing.resource, existing, location=True)
            return
        plan.claims.append(criteria.key())
    plan.target(i, entry, key(rtype, entry.new_id))
    resource = dict(entry.resource or {})
    resource["id"] = entry.new_id
    plan.add(i, Write(rtype, entry.new_id, resource, None, "POST"), 201)


async def _target_of(ctx: Context, entry: Entry, plan: Plan) -> tuple[str | None, Stored | None]:
    """Return the id an entry writes to and that resource's current version, if any."""
    target = entry.target
    conditional = plan.reads.criteria(entry)
    if conditional is None:
        assert target.id is not None, "check() leaves an id or criteria"
        return target.id, await plan.reads.current_of(ctx, target.resource_type, target.id)
    criteria, where = conditional
    found = await plan.reads.find_one(ctx, criteria, where, plan.deleted)
    if found is None and entry.method == "PUT":
        plan.claims.append(criteria.key())
    return (found.id, found) if found else (None, None)


async def _plan_put(ctx: Context, i: int, entry: Entry, plan: Plan) -> None:
    rtype = entry.target.resource_type
    rid, previous = await _target_of(ctx, entry, plan)
    body_id = (entry.resource or {}).get("id")
    if rid is None:  # conditional update without a match creates
        rid = body_id or entry.new_id
        previous = await plan.reads.current_of(ctx, rtype, rid)
    elif body_id and body_id != rid:
        raise BadRequest(
            f"The resource's id ({body_id}) differs from the matched resource ({rid})",
            expression=entry.where("resource.id"),
        )
    _check_if_match(entry, previous)
    plan.target(i, entry, key(rtype, rid))
    # A copy: the body as sent must stay as sent for a retry, whose match may differ (a
    # concurrent writer created the resource meanwhile). Nested elements stay shared, so that
    # resolving references still edits them.
    resource = dict(entry.resource or {})
    resource["id"] = rid
    created = previous is None or previous.deleted
    plan.add(i, Write(rtype, rid, resource, previous, "PUT"), 201 if created else 200)


async def _plan_delete(ctx: Context, i: int, entry: Entry, plan: Plan) -> None:
    rtype = entry.target.resource_type
    rid, previous = await _target_of(ctx, entry, plan)
    if rid is not None:
        plan.target(i, entry, key(rtype, rid))
    if rid is None or previous is None or previous.deleted:
        plan.results[i] = Result(204)
        return
    _check_if_match(entry, previous)
    plan.deleted.add(key(rtype, rid))
    plan.add(i, Write(rtype, rid, None, previous, "DELETE"), 204)


_PLANNERS = {"POST": _plan_post, "PUT": _plan_put, "DELETE": _plan_delete}


async def _refuse_taken_ids(ctx: Context, entries: list[Entry], plan: Plan) -> None:
    """Refuse (403) a scoped writer's update-as-create under an id that a record it may not
    see holds (another facility's, another person's): out of its scope, that record looked
    absent, and must stay untouched."""
    if ctx.scope.unrestricted:
        return
    creating = {
        key(w.resource_type, w.id): i
        for i, index in plan.written.items()
        if (w := plan.writes[index]).previous is None and w.method == "PUT"
    }
    taken = await ctx.store.held_elsewhere(sorted(creating), ctx.scope, ctx.session)
    if taken:
        entry = entries[creating[taken[0]]]
        if ctx.scope.facility is None:
            raise Forbidden(
                f"{taken[0]} is not one of your records: a person writes only their own "
                "consents; create new ones with POST, or under an id of your own"
            ).locate(entry.path)
        raise Forbidden(taken_message(taken[0], ctx.scope.facility)).locate(entry.path)


def _session(ctx: Context) -> AsyncClientSession:
    assert ctx.session is not None, "writes run inside a transaction"
    return ctx.session


async def _apply(ctx: Context, entries: list[Entry]) -> Plan:
    order = sorted(range(len(entries)), key=lambda i: _ORDER.get(entries[i].method, 9))
    plan = Plan(
        reads=await lookahead.read_ahead(ctx, [entries[i] for i in order]),
        facility=ctx.scope.facility,
        author=PERSON if ctx.caller.role == Role.PATIENT else None,
    )
    for i in order:
        planner = _PLANNERS.get(entries[i].method)
        if planner is not None:
            await planner(ctx, i, entries[i], plan)
    await _refuse_taken_ids(ctx, entries, plan)
    if plan.claims:
        # Racing transactions that found no match for the same criteria collide here.
        await ctx.store.claim_conditions(plan.claims, _session(ctx))
    for i, w in plan.written.items():
        if plan.writes[w].resource is None:
            continue
        plan.writes[w].quality = entries[i].quality
        plan.results[i].findings = entries[i].findings
        unresolved = entries[i].references.resolve(plan.resolved, ctx.base)
        if unresolved:
            raise BadRequest(
                f"Reference {unresolved} points at no entry of this bundle "
                "(urn:uuid references link the entries of one transaction)",
                expression=entries[i].where("resource"),
            )
    if plan.writes:
        stored = await ctx.store.write(plan.writes, _session(ctx), ctx.store.clock.now())
        for i, w in plan.written.items():
            plan.results[i].stored = stored[w]
    return plan


async def _count(ctx: Context, plan: Plan) -> None:
    """Add a committed write to the reporting counters: what it created, changed, deleted.
    The write stands whatever happens here: a fault in counting is logged, not answered."""
    if ctx.counters is None or not plan.writes:
        return
    written = [
        (stored, plan.writes[w].previous)
        for i, w in plan.written.items()
        if (stored := plan.results[i].stored) is not None
    ]
    try:
        await ctx.counters.accepted(plan.facility, written, ctx.store.clock.now())
    except Exception:  # noqa: BLE001 - the client must learn its write was stored
        log.exception("could not count a committed write for the reports")


async def commit(
    ctx: Context,
    entries: list[Entry],
    after: Callable[[Context, Plan], Awaitable[None]] | None = None,
) -> list[Result]:
    """Apply entries in one transaction, all or nothing; retry when a concurrent write won.

    `after(ctx, plan)` runs inside the same transaction once the writes are done (the GET
    entries of a transaction); its `ctx.session` is the transaction's.
    """
    for entry in entries:
        refuse_audit_event(entry)
        try:
            check(entry, ctx.settings.max_json_depth)
        except HubError as error:
            raise error.locate(entry.path) from None
    check_scopes(ctx, entries)
    check_claims(ctx, entries)
    await check_consents(ctx, entries)
    check_profiles(ctx, entries)
    for attempt in range(ctx.settings.write_retries):
        try:
            async with ctx.store.mongo.transaction() as session:
                inside = replace(ctx, session=session)
                plan = await _apply(inside, entries)
                if after is not None:
                    await after(inside, plan)
            ctx.store.committed({e.target.resource_type for e in entries})
            await _count(ctx, plan)
            return [plan.results[i] for i in range(len(entries))]
        except VersionConflict:
            if any(e.if_match for e in entries):
                raise PreconditionFailed(
                    "The resource was changed by someone else meanwhile; read it again"
                ) from None
            # Racing writers retry at random moments, so that one of them wins the next round.
            await asyncio.sleep(random.uniform(0, _BACKOFF * 2 ** min(attempt, 6)))
        except Refused as error:
            raise BusinessRule(f"The database refused the write: {error}") from None
        except ConnectionFailure as error:
            # A connection lost inside a transaction aborts it whole: the driver labels that
            # transient, and the transaction can run again (anything else is a 503).
            if not error.has_error_label("TransientTransactionError"):
                raise
            await asyncio.sleep(random.uniform(0, _BACKOFF * 2 ** min(attempt, 6)))
    raise Conflict(
        f"Gave up after {ctx.settings.write_retries} attempts: other writers keep changing "
        "the same resources"
    )
