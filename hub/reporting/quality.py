"""The data quality the national profiles measured, per facility, per rule and per record.

Every version written while profiles are checked keeps its findings and flags in `_hub.q`
(hub/fhir/profiling.py): valid (no error-level finding), complete (every must-support element
present), coded (the national code systems used), identified (a Patient with a valid national
ID). The counts come from the reporting counters (hub/reporting/counters.py), which add each
version's flags and take back its predecessor's; the records, through the search index, which
holds a key per rule a record breaks. A record written with profiles off, or before they
existed, counts as unchecked.
"""

from typing import Any

from hub.reporting.counters import FLAGS, rule_of
from hub.store.resources import FINDING_KEY, ResourceStore
from hub.store.scope import Scope

Row = dict[str, Any]
_WITH_FINDINGS: Row = {"_hub.del": {"$exists": False}, "_hub.q.findings.0": {"$exists": True}}


def summary(totals: list[Row], facility: str | None = None) -> list[Row]:
    """Per facility, from its counters: current records, how many were checked, and how
    many of those are valid, complete, coded; Patients checked and identified."""
    rows = []
    for doc in totals:
        if facility is not None and doc["facility"] != facility:
            continue
        q = doc.get("q") or {}
        rows.append(
            {
                "facility": doc["facility"],
                "records": sum((doc.get("records") or {}).values()),
                "checked": q.get("checked", 0),
                **{flag: q.get(flag, 0) for flag in ("valid", "complete", "coded")},
                "patients": q.get("patients", 0),
                "identified": q.get("identified", 0),
            }
        )
    return sorted(rows, key=lambda r: r["facility"])


def rules(
    totals: list[Row], catalogue: dict[str, tuple[str, str]], facility: str | None = None
) -> list[Row]:
    """Per facility and rule, from its counters: how many current records break it, with
    the severity and axis of its finding; most broken first."""
    rows = []
    for doc in totals:
        if facility is not None and doc["facility"] != facility:
            continue
        for field, records in (doc.get("rules") or {}).items():
            if records > 0:
                rule = rule_of(field)
                severity, axis = catalogue.get(rule, ("error", "correct"))
                row = {"facility": doc["facility"], "rule": rule, "records": int(records)}
                rows.append(row | {"severity": severity, "axis": axis})
    return sorted(rows, key=lambda r: (-r["records"], r["facility"], r["rule"]))


async def findings(
    store: ResourceStore,
    scope: Scope,
    broken: list[str],
    rule: str | None = None,
    resource_type: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> list[Row]:
    """The records of a facility with findings (of one rule or type), in id order from
    `after`: what the facility has to fix, record by record, as far as its scope (the
    facility system's own, hub/access) shows them. The index finds them by the rules they
    break (`broken`: those the facility's counters hold)."""
    wanted = [rule] if rule is not None else broken
    if not wanted:
        return []
    match: Row = {"_hub.sv": {"$in": [f"{FINDING_KEY}{r}" for r in wanted]}} | _WITH_FINDINGS
    if resource_type is not None:
        match["resourceType"] = resource_type
    if after is not None:
        match["_id"] = {"$gt": after}
    found = await store.find(match, scope, projection={"_hub": 1}, limit=limit, sort=[("_id", 1)])
    rows = []
    for record in found:
        q = record.doc["_hub"]["q"]
        rows.append(
            {
                "record": record.doc["_id"],
                "version": record.version,
                **{f: q.get(f) for f in FLAGS},
                "findings": [f for f in q["findings"] if rule is None or f["rule"] == rule],
            }
        )
    return rows
