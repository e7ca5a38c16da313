"""The store's indexes: created idempotently, and used by the lookups they exist for.

The embedded server's explain() is only trustworthy for single-predicate filters (DESIGN.md),
so these check the driving predicate of each lookup; loadtests/bench_lookups.py shows the rest.
"""

from typing import Any

from support import winning_index

from hub.store.mongo import INDEXES, RESOURCES, Mongo


async def index_names(mongo: Mongo, collection: str) -> set[str]:
    """Return the names of a collection's indexes."""
    return {ix["name"] async for ix in await mongo.db[collection].list_indexes()}


async def test_indexes_are_created_once_whatever_the_number_of_starts(app: Any) -> None:
    """Starting the hub again creates no second copy of any index and fails on none."""
    mongo: Mongo = app.state.mongo
    before = {name: await index_names(mongo, name) for name in INDEXES}
    await mongo.ensure_indexes()
    await mongo.ensure_indexes()
    after = {name: await index_names(mongo, name) for name in INDEXES}
    assert after == before
    for name, indexes in INDEXES.items():
        assert {options["name"] for _, options in indexes} <= after[name]


async def test_an_index_the_hub_no_longer_uses_is_dropped(app: Any) -> None:
    """An index left by an older version would slow every write; starting drops it."""
    mongo: Mongo = app.state.mongo
    await mongo.resources.create_index([("_hub.ident", 1)], name="ident", sparse=True)
    assert "ident" in await index_names(mongo, RESOURCES)
    await mongo.ensure_indexes()
    assert "ident" not in await index_names(mongo, RESOURCES)


async def test_read_by_id_uses_the_primary_key(app: Any) -> None:
    """A read looks the current version up by its `_id`, never by scanning."""
    mongo: Mongo = app.state.mongo
    explained = await mongo.resources.find({"_id": "Patient/any"}).explain()
    assert winning_index(explained) == "_id_"


async def test_type_history_is_driven_by_the_type_and_time_index(app: Any) -> None:
    """Type-level history selects by type through the (type, time) index."""
    mongo: Mongo = app.state.mongo
    explained = await mongo.resources.find({"resourceType": "Observation"}).explain()
    assert winning_index(explained) == "type_time"
