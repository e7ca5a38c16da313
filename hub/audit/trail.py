"""The `audit` collection: AuditEvents written once, with insert only, and read back.

Append-only by construction: this is the only code that touches the collection, and it
inserts and finds, nothing else (tests/audit/test_append_only.py reads this source to hold it).
"""

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

# `_hub.btg` of the events of break the glass: a declaration, and a request under its token.
DECLARATION = "declaration"
ACCESS = "access"


class AuditTrail:
    """Write AuditEvents and find them, newest first."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def append(
        self,
        event: dict[str, Any],
        agent: str | None,
        patients: list[str],
        token: str | None = None,
        btg: str | None = None,
        compartments: dict[str, list[str]] | None = None,
    ) -> None:
        """Store one AuditEvent with the keys its searches use: who, whose records, the `jti`
        of the token it was under (of a declaration: the token it issued), whether it is a
        break-the-glass DECLARATION or ACCESS, and whose compartment each listed resource is
        in (what a patient may see of the event: hub/audit/view.py)."""
        # `at`, the id again: the embedded server answers ranges on `_id` by a collection scan.
        keys: dict[str, Any] = {"at": event["id"], "agent": agent, "patients": patients}
        if token:
            keys["token"] = token
        if btg:
            keys["btg"] = btg
        # A list, not a map: a resource's id may hold a dot, which a field name may not.
        listed = [{"resource": r, "patients": p} for r, p in (compartments or {}).items() if p]
        if listed:
            keys["compartments"] = listed
        doc = {**event, "_id": event["id"], "_hub": keys}
        await self.collection.insert_one(doc)

    async def find(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Return at most `limit` stored AuditEvents (with their `_hub` keys) a query finds,
        newest first."""
        cursor = self.collection.find(query, limit=limit).sort("_hub.at", DESCENDING)
        return [doc async for doc in cursor]

    async def keys(
        self, query: dict[str, Any], fields: list[str], limit: int = 0
    ) -> list[dict[str, Any]]:
        """Return the stored documents a query finds, oldest first, with these fields only
        (the `_hub` keys included): for reports that read many events."""
        projection = dict.fromkeys(fields, 1) | {"_id": 0}
        cursor = self.collection.find(query, projection, limit=limit).sort("_hub.at", ASCENDING)
        return [doc async for doc in cursor]

    async def count(self, query: dict[str, Any]) -> int:
        """Return how many AuditEvents a query finds."""
        return int(await self.collection.count_documents(query))

    async def get(self, event_id: str) -> dict[str, Any] | None:
        """Return one stored AuditEvent (with its `_hub` keys), if it exists."""
        doc: dict[str, Any] | None = await self.collection.find_one({"_id": event_id})
        return doc
