"""The data quality the national profiles measured, per facility, per rule and per record.

Every version written while profiles are checked keeps its findings and flags in `_hub.q`
(hub/fhir/profiling.py): valid (no error-level finding), complete (every must-support element
present), coded (the national code systems used), identified (a Patient with a valid national
ID). These queries count current versions only; a record written with profiles off, or
before they existed, counts as unchecked.
"""

from typing import Any

from hub.store.resources import FINDING_KEY, ResourceStore
from hub.store.scope import Scope

Row = dict[str, Any]
_FLAGS = ("valid", "complete", "coded", "identified")
_CURRENT: Row = {"_hub.del": {"$exists": False}}
_WITH_FINDINGS: Row = _CURRENT | {"_hub.q.findings.0": {"$exists": True}}


async def summary(store: ResourceStore, facility: str | None = None) -> list[Row]:
    """Per facility and resource type: records, how many were checked, and how many of
    those are valid, complete, coded and (Patients) identified."""
    counts = {f: {"$sum": {"$cond": [{"$eq": [f"$_hub.q.{f}", True]}, 1, 0]}} for f in _FLAGS}
    stages: list[Row] = [
        {
            "$group": {
                "_id": {"facility": "$_hub.fac", "type": "$resourceType"},
                "records": {"$sum": 1},
                "checked": {"$sum": {"$cond": [{"$ifNull": ["$_hub.q", False]}, 1, 0]}},
                **counts,
            }
        },
        {"$sort": {"_id.facility": 1, "_id.type": 1}},
    ]
    rows = []
    for row in await store.aggregate(_CURRENT, stages, Scope(facility=facility)):
        key = row.pop("_id")
        if key["type"] != "Patient":
            row.pop("identified")
        rows.append({"facility": key.get("facility"), "type": key["type"], **row})
    return rows


async def rules(store: ResourceStore, facility: str | None = None) -> list[Row]:
    """Per facility and rule: how many current records break it, most broken first."""
    stages: list[Row] = [
        {"$unwind": "$_hub.q.findings"},
        {
            "$group": {
                "_id": {
                    "facility": "$_hub.fac",
                    "rule": "$_hub.q.findings.rule",
                    "record": "$_id",
                },
                "severity": {"$first": "$_hub.q.findings.severity"},
                "axis": {"$first": "$_hub.q.findings.axis"},
                "type": {"$first": "$resourceType"},
            }
        },
        {
            "$group": {
                "_id": {"facility": "$_id.facility", "rule": "$_id.rule"},
                "records": {"$sum": 1},
                "severity": {"$first": "$severity"},
                "axis": {"$first": "$axis"},
                "type": {"$first": "$type"},
            }
        },
        {"$sort": {"records": -1, "_id.facility": 1, "_id.rule": 1}},
    ]
    rows = []
    for row in await store.aggregate(_WITH_FINDINGS, stages, Scope(facility=facility)):
        key = row.pop("_id")
        rows.append({"facility": key.get("facility"), "rule": key["rule"], **row})
    return rows


async def findings(
    store: ResourceStore,
    facility: str,
    rule: str | None = None,
    resource_type: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> list[Row]:
    """The records of a facility with findings (of one rule or type), in id order from
    `after`: what the facility has to fix, record by record."""
    match = dict(_WITH_FINDINGS)
    if rule is not None:  # first: the index finds the records breaking it
        match = {"_hub.sv": f"{FINDING_KEY}{rule}"} | match
    if resource_type is not None:
        match["resourceType"] = resource_type
    if after is not None:
        match["_id"] = {"$gt": after}
    found = await store.find(
        match, Scope(facility=facility), projection={"_hub": 1}, limit=limit, sort=[("_id", 1)]
    )
    rows = []
    for record in found:
        q = record.doc["_hub"]["q"]
        rows.append(
            {
                "record": record.doc["_id"],
                "version": record.version,
                **{f: q.get(f) for f in _FLAGS},
                "findings": [f for f in q["findings"] if rule is None or f["rule"] == rule],
            }
        )
    return rows
