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
    ) -> None:
        """Store one AuditEvent with the keys its searches use: who, whose records, the `jti`
        of the token it was under (of a declaration: the token it issued), and whether it is a
        break-the-glass DECLARATION or ACCESS."""
        # `at`, the id again: the embedded server answers ranges on `_id` by a collection scan.
        keys: dict[str, Any] = {"at": event["id"], "agent": agent, "patients": patients}
        if token:
            keys["token"] = token
        if btg:
            keys["btg"] = btg
        doc = {**event, "_id": event["id"], "_hub": keys}
        await self.collection.insert_one(doc)

    async def find(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Return at most `limit` AuditEvents a query finds, newest first."""
        cursor = self.collection.find(query, limit=limit).sort("_hub.at", DESCENDING)
        return [_event(doc) async for doc in cursor]

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

    async def get(self, event_id: str) -> tuple[dict[str, Any], list[str]] | None:
        """Return one AuditEvent and the patients it names, if it exists."""
        doc = await self.collection.find_one({"_id": event_id})
        if doc is None:
            return None
        return _event(doc), list(doc.get("_hub", {}).get("patients", []))


def _event(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("_id", "_hub")}
