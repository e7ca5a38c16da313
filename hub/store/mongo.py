"""The MongoDB connection: client, collections and indexes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

# The current version of every resource, one document each (tombstones for deleted ones).
RESOURCES = "resources"
# Every superseded version; creating a resource writes nothing here.
HISTORY = "history"
# One document per conditional-create criteria that found no match, so that two transactions
# creating "the same" resource at once collide on it and the loser retries and finds the match.
CONDITIONS = "conditions"
# AuditEvents, append-only: written with insert only (hub/audit/trail.py). Their id sorts by
# recorded time; `_hub.at` repeats it for ranges.
AUDIT = "audit"
# Facts about the database itself, such as the layout its search keys were written in.
META = "meta"
# The reporting counters, per facility and per facility and day (hub/reporting/counters.py),
# and each person with a record, by national ID.
STATS = "stats"
PERSONS = "persons"

# Ascending on purpose: queries walk it backwards for newest-first, and the embedded server
# (SecantusDB 0.7.0b3) drops a range bound's equal values on a descending compound key.
_TYPE_TIME = [("resourceType", ASCENDING), ("_hub.ts", ASCENDING), ("_id", ASCENDING)]
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    # Type-level _history and _lastUpdated.
    RESOURCES: [
        (_TYPE_TIME, {"name": "type_time"}),
        # Every search value, prefixed by type and parameter: one index serves every search,
        # since on the embedded server each index costs about as much ingest as the document.
        ([("_hub.sv", ASCENDING)], {"name": "search", "sparse": True}),
    ],
    HISTORY: [(_TYPE_TIME, {"name": "type_time"})],
    # Searches by patient, by agent and by date, newest first.
    AUDIT: [
        ([("_hub.patients", ASCENDING), ("_hub.at", ASCENDING)], {"name": "patient_time"}),
        ([("_hub.agent", ASCENDING), ("_hub.at", ASCENDING)], {"name": "agent_time"}),
        ([("_hub.at", ASCENDING)], {"name": "time"}),
        # Break the glass: declarations and the accesses under their tokens, a few among
        # millions. Sparse, so that ordinary events cost it nothing.
        ([("_hub.btg", ASCENDING)], {"name": "btg", "sparse": True}),
    ],
    # Every facility's totals; the days of a span.
    STATS: [([("kind", ASCENDING), ("day", ASCENDING)], {"name": "kind_day"})],
}


class UnsuitableDatabase(RuntimeError):
    """The server cannot do what the hub needs of it."""


class Mongo:
    """A connected database and its collections."""

    def __init__(self, uri: str, database: str, timeout_seconds: float = 10.0) -> None:
        self.client: AsyncMongoClient = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=int(timeout_seconds * 1000)
        )
        self.db: AsyncDatabase = self.client[database]
        self.resources = self.db[RESOURCES]
        self.history = self.db[HISTORY]
        self.conditions = self.db[CONDITIONS]
        self.meta = self.db[META]
        self.audit = self.db[AUDIT]
        self.stats = self.db[STATS]
        self.persons = self.db[PERSONS]

    async def ensure_indexes(self) -> None:
        """Create the hub's indexes and drop those it no longer uses, which would slow writes."""
        for collection, indexes in INDEXES.items():
            wanted = {options["name"] for _, options in indexes} | {"_id_"}
            async for index in await self.db[collection].list_indexes():
                if index["name"] not in wanted:
                    await self.db[collection].drop_index(index["name"])
            for keys, options in indexes:
                await self.db[collection].create_index(keys, **options)

    async def require_transactions(self) -> None:
        """Refuse a server that cannot run multi-document transactions: a standalone mongod."""
        hello = await self.client.admin.command("hello")
        if hello.get("setName") or hello.get("msg") == "isdbgrid":
            return
        raise UnsuitableDatabase(
            "The MongoDB server is a standalone server, and FHIR transactions need multi-document "
            "transactions, which only a replica set or a sharded cluster runs. A single-node "
            "replica set will do: start mongod with --replSet rs0 and run rs.initiate() once."
        )

    async def ping(self) -> None:
        """Raise unless the database answers."""
        await self.client.admin.command("ping")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncClientSession]:
        """Run the block in one multi-document transaction; commit on success, abort on error."""
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                yield session

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()
