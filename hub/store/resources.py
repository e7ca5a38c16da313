"""The resource store: every version of every resource, the current one apart.

A resource's current version is one document in `resources` with `_id` "Type/id"; superseded
versions move to `history` with `_id` "Type/id/_history/N". Creating a resource therefore costs
one document write; updating or deleting one costs two. Internal fields live under `_hub` and
never leave the store.
"""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DESCENDING, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from consent import security_labels
from hub.core.clock import Clock
from hub.store.mongo import Mongo
from hub.store.scope import SHARED, Scope, patients_of, visibility_keys

INTERNAL = ("_id", "_hub")
# The search key of a record that breaks a national-profile rule (`_hub.sv`): the records
# behind a facility's quality score are found through the index every search uses.
FINDING_KEY = "!finding|"
# The types whose writes change who may see which records.
VISIBILITY_TYPES = frozenset({"Patient", "Consent", "Organization"})
# Type history reads time windows backwards from now: the first spans a second, each next one
# four times more, down to a time before any version this software can have written. Small
# first windows keep a page cheap right after a bulk import, when one second holds thousands.
_FIRST_WINDOW = timedelta(seconds=1)
_WINDOW_GROWTH = 4
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_SLACK = timedelta(seconds=5)  # clocks of several hub processes differ a little
# `_hub.by` of a version the person it is about wrote through their own login.
PERSON = "person"
# MongoDB's codes for a write that raced another transaction on the same document.
_CONFLICT_CODES = {11000, 112, 251}


class VersionConflict(Exception):
    """Another writer changed the resource between our read and our write."""


class Refused(Exception):
    """The database refused a document (too large, too deeply nested, ...)."""


@dataclass
class Stored:
    """One stored version of a resource, as the store hands it out."""

    doc: dict[str, Any]

    @property
    def resource(self) -> dict[str, Any]:
        """Return the resource JSON without internal fields."""
        return {k: v for k, v in self.doc.items() if k not in INTERNAL}

    @property
    def resource_type(self) -> str:
        return str(self.doc["resourceType"])

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def version(self) -> int:
        return int(self.doc["_hub"]["v"])

    @property
    def facility(self) -> str | None:
        """Return the code of the facility the version is attributed to, if any."""
        fac = self.doc["_hub"].get("fac")
        return str(fac) if fac is not None else None

    @property
    def deleted(self) -> bool:
        return bool(self.doc["_hub"].get("del"))

    @property
    def patients(self) -> frozenset[str]:
        """Return the ids of the Patients whose records this version is (itself for one)."""
        return patients_of(self.doc["_hub"].get("see") or ())

    @property
    def shared(self) -> bool:
        """Tell whether the version is reference data every caller with a token may read."""
        return SHARED in (self.doc["_hub"].get("see") or ())

    @property
    def by_person(self) -> bool:
        """Tell whether the person the record is about wrote this version themselves."""
        return self.doc["_hub"].get("by") == PERSON

    @property
    def method(self) -> str:
        return str(self.doc["_hub"].get("m", "PUT"))

    @property
    def last_updated(self) -> str:
        return str(self.doc["meta"]["lastUpdated"])

    @property
    def timestamp(self) -> datetime:
        ts: datetime = self.doc["_hub"]["ts"]
        return ts.astimezone(UTC)


@dataclass
class Write:
    """One resource version to write: a new resource, or a successor of `previous`."""

    resource_type: str
    id: str
    resource: dict[str, Any] | None  # None deletes
    previous: Stored | None
    method: str = "PUT"
    # The facility the version is attributed to (`_hub.fac`): the writer's, else the
    # previous version's.
    facility: str | None = None
    # Its findings against the national profiles and its quality flags (`_hub.q`).
    quality: dict[str, Any] | None = None
    # PERSON when the person the record is about writes it through their own login (`_hub.by`).
    author: str | None = None


def key(resource_type: str, resource_id: str) -> str:
    """Return the store key of a resource's current version."""
    return f"{resource_type}/{resource_id}"


def now() -> datetime:
    """Return the current time at the millisecond precision MongoDB keeps."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def instant(t: datetime) -> str:
    """Format a time as a FHIR instant."""
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextmanager
def _conflicts() -> Iterator[None]:
    """Turn the database's ways of saying "another writer won" into VersionConflict, and its
    refusal of a document into Refused."""
    try:
        yield
    except DuplicateKeyError as error:
        raise VersionConflict() from error
    except BulkWriteError as error:
        details = (error.details or {}).get("writeErrors") or [{}]
        if details[0].get("code") in _CONFLICT_CODES:
            raise VersionConflict() from error
        raise Refused(str(details[0].get("errmsg", error))) from error
    except OperationFailure as error:
        if error.code in _CONFLICT_CODES or error.has_error_label("TransientTransactionError"):
            raise VersionConflict() from error
        raise


class ResourceStore:
    """Reads and writes resources; the only code that touches their collections."""

    def __init__(
        self,
        mongo: Mongo,
        index_keys: Callable[[dict[str, Any]], list[str]],
        clock: Clock | None = None,
    ) -> None:
        self.mongo = mongo
        # Every version is stamped with this clock's now (tests set it to cross a day).
        self.clock = clock or Clock(UTC)
        # The search values of a resource, written with it into `_hub.sv`.
        self.index_keys = index_keys
        # How many writes of what decides visibility (Patient, Consent, Organization) this
        # process committed: what was remembered of them before is stale.
        self.changes = 0

    async def current(
        self,
        resource_type: str,
        resource_id: str,
        scope: Scope,
        session: AsyncClientSession | None = None,
    ) -> Stored | None:
        """Return the current version (a tombstone if deleted), or None if it never existed."""
        doc = await self.mongo.resources.find_one(
            scope.apply({"_id": key(resource_type, resource_id)}), session=session
        )
        if doc is None or not (await scope.admit([(doc, None)]))[0]:
            return None
        return Stored(doc)

    async def currents(
        self, keys: list[str], scope: Scope, session: AsyncClientSession | None = None
    ) -> dict[str, Stored]:
        """Return the current versions of many resources by key."""
        if not keys:
            return {}
        cursor = self.mongo.resources.find(scope.apply({"_id": {"$in": keys}}), session=session)
        docs = await scope.admitted([doc async for doc in cursor])
        return {doc["_id"]: Stored(dict(doc)) for doc in docs}

    async def version(
        self,
        resource_type: str,
        resource_id: str,
        version: int,
        scope: Scope,
        session: AsyncClientSession | None = None,
    ) -> Stored | None:
        """Return one version of a resource, or None."""
        current = await self.current(resource_type, resource_id, scope, session)
        if current is None or version > current.version:
            return None
        if version == current.version:
            return current
        doc = await self.mongo.history.find_one(
            scope.apply({"_id": f"{key(resource_type, resource_id)}/_history/{version}"}),
            session=session,
        )
        if doc is None or not (await scope.admit([(doc, current.doc)]))[0]:
            return None
        return Stored(doc)

    async def instance_history(
        self,
        resource_type: str,
        resource_id: str,
        scope: Scope,
        below: int | None,
        count: int,
        session: AsyncClientSession | None = None,
    ) -> list[Stored]:
        """Return up to `count` versions of one resource, newest first, older than `below`."""
        current = await self.current(resource_type, resource_id, scope, session)
        if current is None:
            return []
        top = current.version if below is None else min(below - 1, current.version)
        wanted = list(range(top, max(top - count, 0), -1))
        found = [current] if current.version in wanted else []
        older = [
            f"{key(resource_type, resource_id)}/_history/{v}"
            for v in wanted
            if v != current.version
        ]
        if older:
            cursor = self.mongo.history.find(scope.apply({"_id": {"$in": older}}), session=session)
            docs = [doc async for doc in cursor]
            verdicts = await scope.admit([(doc, current.doc) for doc in docs])
            found += [Stored(d) for d, shown in zip(docs, verdicts, strict=True) if shown]
        return sorted(found, key=lambda s: s.version, reverse=True)

    async def type_history(
        self,
        resource_type: str,
        scope: Scope,
        since: datetime | None,
        after: tuple[datetime, str] | None,
        count: int,
        session: AsyncClientSession | None = None,
        current_only: bool = False,
    ) -> list[Stored]:
        """Return up to `count` versions of a type's resources that the scope admits, newest
        first; with `current_only`, the type's current, undeleted resources.

        Versions are ordered by (time, key), so that versions written in the same millisecond
        still have a place; `after` is the (time, key) of the last version already seen.
        """
        found: list[Stored] = []
        batches = self._backwards(resource_type, scope, since, after, count, session, current_only)
        async for batch in batches:
            found += await self._admitted_versions(batch, scope, session)
            if len(found) >= count:
                break
        return found[:count]

    async def _backwards(
        self,
        resource_type: str,
        scope: Scope,
        since: datetime | None,
        after: tuple[datetime, str] | None,
        count: int,
        session: AsyncClientSession | None,
        current_only: bool,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the type's versions older than `after`, newest first, `count` at most a batch.

        The embedded server sorts in memory whatever a query matches instead of walking the
        index in order, so versions are read in time windows growing backwards from the
        newest: a page costs what its windows hold, not what the whole type holds.
        """
        base: dict[str, Any] = {"resourceType": resource_type}
        current = {"_hub.del": {"$exists": False}} if current_only else None
        floor = max(since, _EPOCH) if since else _EPOCH
        at, last_key = after if after is not None else (self.clock.now() + _SLACK, None)
        width = _FIRST_WINDOW
        while True:
            if last_key is not None and at >= floor:
                # The rest of the cursor's millisecond first.
                same = base | {"_hub.ts": at, "_id": {"$lt": last_key}}
                batch = await self._newest(same, scope, count, session, current)
                if batch:
                    yield batch
                if len(batch) == count:
                    at, last_key = batch[-1]["_hub"]["ts"], batch[-1]["_id"]
                    continue
            if at <= floor:
                return
            bottom = max(at - width, floor)
            window = base | {"_hub.ts": {"$gte": bottom, "$lt": at}}
            batch = await self._newest(window, scope, count, session, current)
            if batch:
                yield batch
            if len(batch) == count:
                at, last_key = batch[-1]["_hub"]["ts"], batch[-1]["_id"]
            else:
                at, last_key, width = bottom, None, width * _WINDOW_GROWTH

    async def _newest(
        self,
        query: dict[str, Any],
        scope: Scope,
        count: int,
        session: AsyncClientSession | None,
        current: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the newest `count` versions matching a query narrowed to the scope, current
        and superseded ones; given `current`, the current versions meeting it."""
        found: list[dict[str, Any]] = []
        order = [("_hub.ts", DESCENDING), ("_id", DESCENDING)]
        collections = (
            [self.mongo.resources] if current else [self.mongo.resources, self.mongo.history]
        )
        query = query | (current or {})
        for collection in collections:
            cursor = collection.find(scope.apply(query), session=session).sort(order).limit(count)
            found += [doc async for doc in cursor]
        found.sort(key=lambda d: (d["_hub"]["ts"], d["_id"]), reverse=True)
        return found[:count]

    async def _admitted_versions(
        self, docs: list[dict[str, Any]], scope: Scope, session: AsyncClientSession | None
    ) -> list[Stored]:
        """Return the versions the scope admits, each judged with its record's current
        version: what a later version hides stays hidden in history."""
        if scope.judge is None:
            return [Stored(d) for d in docs]
        keys = {d["_id"]: d["_id"].split("/_history/")[0] for d in docs}
        superseded = sorted({k for v, k in keys.items() if v != k})
        currents: dict[str, dict[str, Any]] = {}
        if superseded:
            cursor = self.mongo.resources.find(
                scope.apply({"_id": {"$in": superseded}}), session=session
            )
            currents = {doc["_id"]: doc async for doc in cursor}
        # A superseded version whose current one lies outside the scope is not shown.
        judged = [d for d in docs if keys[d["_id"]] == d["_id"] or keys[d["_id"]] in currents]
        verdicts = await scope.admit([(d, currents.get(keys[d["_id"]])) for d in judged])
        return [Stored(d) for d, shown in zip(judged, verdicts, strict=True) if shown]

    async def find(
        self,
        query: dict[str, Any],
        scope: Scope,
        session: AsyncClientSession | None = None,
        projection: dict[str, Any] | None = None,
        limit: int = 0,
        sort: list[tuple[str, int]] | None = None,
    ) -> list[Stored]:
        """Return the current, undeleted resources a query finds (at most `limit`, if given,
        in `sort` order)."""
        # The judge may refuse some of what the database finds: then the limit is counted
        # here, on what it admits.
        cursor = self.mongo.resources.find(
            scope.apply(query),
            scope.projection(projection),
            session=session,
            limit=limit if scope.judge is None else 0,
            sort=sort,
        )
        docs = [doc async for doc in cursor if not doc.get("_hub", {}).get("del")]
        found = [Stored(dict(doc)) for doc in await scope.admitted(docs)]
        return found[:limit] if limit else found

    async def held_elsewhere(
        self, keys: list[str], scope: Scope, session: AsyncClientSession | None = None
    ) -> list[str]:
        """Return which of these keys name current resources outside the scope: ids a scoped
        writer may not take. Only the keys are read, never the resources."""
        if not keys:
            return []
        cursor = self.mongo.resources.find(
            scope.outside({"_id": {"$in": keys}}), {"_id": 1}, session=session
        )
        outside = sorted([doc["_id"] async for doc in cursor])
        if scope.facility is None and outside:  # a person: what they may see is theirs
            seen = await self.currents(outside, scope, session)
            outside = [k for k in outside if k not in seen]
        return outside

    async def search_layout(self) -> str | None:
        """Return the layout the stored search keys were written in, if recorded."""
        doc = await self.mongo.meta.find_one({"_id": "search"})
        return str(doc["layout"]) if doc else None

    async def rewrite_search_keys(
        self, layout: str, progress: Callable[[int, int], None], batch: int = 500
    ) -> int:
        """Write every current resource's search keys again, then record the layout.

        Run before serving, when the registry or the key format changed: keys written by an
        older layout would make searches miss resources.
        """
        total = await self.mongo.resources.count_documents({})
        done = 0
        updates: list[UpdateOne] = []
        async for doc in self.mongo.resources.find({}, batch_size=batch):
            resource = {k: v for k, v in doc.items() if k not in INTERNAL}
            keys = [] if doc["_hub"].get("del") else self._keys(resource, doc["_hub"].get("q"))
            see = visibility_keys(doc["resourceType"], doc["id"], doc["_hub"].get("fac"), keys)
            updates.append(
                UpdateOne({"_id": doc["_id"]}, {"$set": {"_hub.sv": keys, "_hub.see": see}})
            )
            if len(updates) >= batch:
                await self.mongo.resources.bulk_write(updates, ordered=False)
                done += len(updates)
                updates = []
                progress(done, total)
        if updates:
            await self.mongo.resources.bulk_write(updates, ordered=False)
            done += len(updates)
            progress(done, total)
        await self.mongo.meta.replace_one({"_id": "search"}, {"layout": layout}, upsert=True)
        return done

    def committed(self, resource_types: set[str]) -> None:
        """Note a committed write of these types (hub.auth.visibility forgets what it knew)."""
        if not VISIBILITY_TYPES.isdisjoint(resource_types):
            self.changes += 1

    async def claim_conditions(self, criteria_keys: list[str], session: AsyncClientSession) -> None:
        """Touch the records of conditional creates, so that racing transactions conflict."""
        claims = [
            UpdateOne({"_id": k}, {"$inc": {"n": 1}}, upsert=True)
            for k in dict.fromkeys(criteria_keys)
        ]
        with _conflicts():
            await self.mongo.conditions.bulk_write(claims, ordered=True, session=session)

    async def write(
        self, writes: list[Write], session: AsyncClientSession, when: datetime | None = None
    ) -> list[Stored]:
        """Write new versions in one batch inside the caller's transaction; return them stored.

        Raises VersionConflict if any previous version is no longer current.
        """
        when = when or self.clock.now()
        stamp = instant(when)
        inserts: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        replaces: list[ReplaceOne[dict[str, Any]]] = []
        stored = []
        for w in writes:
            doc = self._document(w, when, stamp)
            stored.append(Stored(doc))
            if w.previous is None:
                inserts.append(doc)
                continue
            old = dict(w.previous.doc)
            old["_id"] = f"{old['_id']}/_history/{w.previous.version}"
            # Only current versions are searched: a superseded one keeps no search keys.
            old["_hub"] = {k: v for k, v in old["_hub"].items() if k != "sv"}
            moves.append(old)
            replaces.append(ReplaceOne({"_id": doc["_id"], "_hub.v": w.previous.version}, doc))
        with _conflicts():
            if inserts:
                await self.mongo.resources.insert_many(inserts, ordered=True, session=session)
            if moves:
                await self.mongo.history.insert_many(moves, ordered=True, session=session)
                result = await self.mongo.resources.bulk_write(
                    replaces, ordered=True, session=session
                )
                if result.matched_count != len(replaces):
                    raise VersionConflict()
        return stored

    def _keys(self, resource: dict[str, Any], quality: dict[str, Any] | None) -> list[str]:
        """Return a record's search keys, and a key per national-profile rule it breaks."""
        keys = self.index_keys(resource)
        if quality:
            keys += sorted({f"{FINDING_KEY}{f['rule']}" for f in quality["findings"]})
        return keys

    def _document(self, w: Write, when: datetime, stamp: str) -> dict[str, Any]:
        """Build the stored document of a new version, with server meta and internal fields."""
        version = w.previous.version + 1 if w.previous else 1
        resource = w.resource or {"resourceType": w.resource_type, "id": w.id}
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = stamp
        doc = {**resource, "id": w.id, "meta": meta}
        internal: dict[str, Any] = {
            "v": version,
            "ts": when,
            "m": w.method if w.resource else "DELETE",
        }
        facility = w.facility or (w.previous.facility if w.previous else None)
        if facility is not None:
            internal["fac"] = facility
        if w.author is not None:
            internal["by"] = w.author
        if w.resource is None:
            internal["del"] = True
        else:
            internal["sv"] = self._keys(doc, w.quality)
            labels = security_labels(doc)
            if labels:
                internal["labels"] = labels
            if w.quality is not None:
                internal["q"] = w.quality
        internal["see"] = visibility_keys(w.resource_type, w.id, facility, internal.get("sv", []))
        doc["_id"] = key(w.resource_type, w.id)
        doc["_hub"] = internal
        return doc
