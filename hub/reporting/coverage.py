"""Coverage: how many facilities are connected and live, against the registry, per facility,
province and level; how many records and people. Read from the counters and the registry,
never from the records themselves.

A facility is *connected* once the hub accepted a submission of it, and *live* while its last
one is at most `EHRHUB_LIVE_DAYS` old. With a date, the figures are those at the end of that
day, summed from the day counters.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from time import monotonic
from typing import Any

from hub.reporting.counters import Counters
from hub.reporting.registry import LEVEL_SYSTEM, OWNERSHIP_SYSTEM, PROVINCE_EXTENSION, TYPE_SYSTEM
from hub.store.resources import ResourceStore
from hub.store.scope import Scope

Row = dict[str, Any]
log = logging.getLogger("ehrhub.reporting")


@dataclass(frozen=True)
class Registered:
    """A facility as the registry knows it."""

    code: str
    name: str = ""
    province: str = ""  # its code, or its name where the registry has no code
    province_name: str = ""
    level: str = ""
    type: str = ""
    ownership: str = ""

    def within(self, scope: dict[str, list[str]]) -> bool:
        """Tell whether the facility falls under a scope: {"facility": [...], "province":
        [...], "level": [...], "type": [...], "ownership": [...]}, each a list of codes; an
        empty scope is everything."""
        fields = {
            "facility": self.code,
            "province": self.province,
            "level": self.level,
            "type": self.type,
            "ownership": self.ownership,
        }
        return all(fields.get(name) in wanted for name, wanted in scope.items() if wanted)


def registered_of(organization: dict[str, Any], facility_system: str) -> Registered | None:
    """Read a registry Organization: its facility code, name, province, level, type and
    ownership; None if it carries no facility code."""
    code = next(
        (
            i.get("value")
            for i in organization.get("identifier") or []
            if isinstance(i, dict) and i.get("system") == facility_system
        ),
        None,
    )
    if not isinstance(code, str):
        return None
    kinds = {
        c.get("system"): c.get("code")
        for t in organization.get("type") or []
        for c in (t.get("coding") or [] if isinstance(t, dict) else [])
        if isinstance(c, dict)
    }
    address = (organization.get("address") or [{}])[0]
    province = next(
        (
            e.get("valueCoding") or {}
            for e in address.get("extension") or organization.get("extension") or []
            if isinstance(e, dict) and e.get("url") == PROVINCE_EXTENSION
        ),
        {},
    )
    province_name = province.get("display") or address.get("state") or ""
    return Registered(
        code=code,
        name=str(organization.get("name") or ""),
        province=str(province.get("code") or province_name),
        province_name=str(province_name),
        level=str(kinds.get(LEVEL_SYSTEM) or ""),
        type=str(kinds.get(TYPE_SYSTEM) or ""),
        ownership=str(kinds.get(OWNERSHIP_SYSTEM) or ""),
    )


class Registry:
    """The registered facilities, read once: again before answering after an Organization
    changed through this process (`ResourceStore.changes`), and in the background after
    `seconds` (other processes' changes) while the remembered ones answer."""

    def __init__(self, store: ResourceStore, facility_system: str, seconds: float = 30.0):
        self.store = store
        self.facility_system = facility_system
        self.seconds = seconds
        self._read: tuple[int, float, dict[str, Registered]] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def facilities(self) -> dict[str, Registered]:
        """Return every registered facility by code."""
        if self._read is None or self._read[0] != self.store.changes:
            await self._read_all()
        elif monotonic() - self._read[1] >= self.seconds and self._reading is None:
            self._reading = asyncio.create_task(self._read_all())
            self._reading.add_done_callback(self._done)
        assert self._read is not None
        return self._read[2]

    async def _read_all(self) -> None:
        changes, clock = self.store.changes, monotonic()
        organizations = await self.store.find({"resourceType": "Organization"}, Scope())
        found = {}
        for stored in organizations:
            facility = registered_of(stored.resource, self.facility_system)
            if facility is not None:
                found[facility.code] = facility
        self._read = (changes, clock, found)

    def _done(self, task: "asyncio.Task[None]") -> None:
        self._reading = None
        if not task.cancelled() and task.exception() is not None:
            log.error("registry not read again: %s", task.exception())


_NUMBERS = (
    "accepted",
    "refused",
    "patients",
    "people",
    "delays",
    "timely",
    "duplicates",
    "consents_permit",
    "consents_deny",
    "exchanged_in",
    "exchanged_out",
)


@dataclass
class Figures:
    """What the counters say of one facility (as of a date, or now)."""

    first: datetime | None = None
    last: datetime | None = None
    accepted: int = 0
    refused: int = 0
    patients: int = 0
    people: int = 0
    delays: int = 0
    timely: int = 0
    duplicates: int = 0
    consents_permit: int = 0
    consents_deny: int = 0
    exchanged_in: int = 0  # records it read that other facilities hold
    exchanged_out: int = 0  # records of its own other facilities read
    delay_seconds: float = 0.0
    records: dict[str, int] = field(default_factory=dict)  # current records by type
    q: dict[str, int] = field(default_factory=dict)  # checked, valid, complete, coded, …
    rules: dict[str, int] = field(default_factory=dict)  # records breaking each rule

    def add(self, doc: dict[str, Any], when: datetime | None = None) -> None:
        """Add a counter document (a facility's totals, or one of its days, ending `when`)."""
        for name in _NUMBERS:
            setattr(self, name, getattr(self, name) + int(doc.get(name, 0)))
        self.delay_seconds += float(doc.get("delay_seconds", 0))
        for name in ("records", "q", "rules"):
            mine = getattr(self, name)
            for key, n in (doc.get(name) or {}).items():
                mine[key] = mine.get(key, 0) + int(n)
        first: datetime | None = doc.get("first", when)
        last: datetime | None = doc.get("last", when)
        if doc.get("accepted") and first is not None and last is not None:
            self.first = first if self.first is None else min(self.first, first)
            self.last = last if self.last is None else max(self.last, last)

    def kept(self) -> dict[str, Any]:
        """Return the figures as a document to keep (`Counters.keep`)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


async def figures(counters: Counters, on: date | None) -> dict[str, Figures]:
    """Return each facility's figures: now, or at the end of a past day."""
    found: dict[str, Figures] = defaultdict(Figures)
    clock = counters.clock
    # Today is not over: its figures are the running totals, never a kept day.
    if on is None or on >= clock.today():
        for doc in await counters.facilities():
            found[doc["facility"]].add(doc)
        return found
    day = on.isoformat()
    kept = await counters.snapshot(day)
    if kept is not None:
        for doc in kept:
            found[doc["facility"]].add(doc)
        return found
    # Sum from the last day kept before it (or from the start), then keep this one.
    since = await counters.latest_snapshot(day)
    if since is not None:
        for doc in await counters.snapshot(since) or []:
            found[doc["facility"]].add(doc)
    after = (date.fromisoformat(since) + timedelta(days=1)).isoformat() if since else "0000-00-00"
    for doc in await counters.days(after, day):
        found[doc["facility"]].add(doc, clock.end_of(date.fromisoformat(doc["day"])))
    await counters.keep(day, {facility: f.kept() for facility, f in found.items()})
    return found


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def facility_row(facility: Registered, f: Figures, at: datetime, live_days: int) -> Row:
    """One facility's row of the coverage report."""
    live = f.last is not None and at - f.last <= timedelta(days=live_days)
    return {
        "facility": facility.code,
        "name": facility.name,
        "province": facility.province,
        "province_name": facility.province_name,
        "level": facility.level,
        "type": facility.type,
        "ownership": facility.ownership,
        "connected": f.first is not None,
        "live": live,
        "first_submission": f.first.isoformat() if f.first else None,
        "last_submission": f.last.isoformat() if f.last else None,
        "submissions_accepted": f.accepted,
        "submissions_refused": f.refused,
        "records": sum(f.records.values()),
        "records_by_type": {t: n for t, n in sorted(f.records.items()) if n},
        "patients": f.patients,
        "records_read_from_others": f.exchanged_in,
        "records_read_by_others": f.exchanged_out,
        "mean_delay_hours": round(f.delay_seconds / f.delays / 3600, 2) if f.delays else None,
        "timely_share": _share(f.timely, f.delays),
    }


def summarise(rows: Iterable[Row]) -> Row:
    """Add up facility rows: registered, connected, live, their shares, records, patients."""
    rows = list(rows)
    connected = sum(r["connected"] for r in rows)
    live = sum(r["live"] for r in rows)
    return {
        "registered": len(rows),
        "connected": connected,
        "live": live,
        "connected_share": _share(connected, len(rows)),
        "live_share": _share(live, len(rows)),
        "records": sum(r["records"] for r in rows),
        "patients": sum(r["patients"] for r in rows),
        "records_exchanged": sum(r["records_read_by_others"] for r in rows),
        "submissions_accepted": sum(r["submissions_accepted"] for r in rows),
        "submissions_refused": sum(r["submissions_refused"] for r in rows),
    }


def grouped(rows: list[Row], key: str, names: dict[str, str] | None = None) -> list[Row]:
    """Summaries of the rows by one of their fields (province, level), in its order."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
    return [
        {key: value, **({"name": names.get(value, value)} if names else {}), **summarise(found)}
        for value, found in sorted(groups.items())
    ]


async def snapshot(
    registry: Registry, counters: Counters, on: date | None
) -> tuple[datetime, dict[str, Registered], dict[str, Figures]]:
    """What a report reads: the instant it speaks of (now, or the end of a day), the
    registered facilities, and every facility's figures then."""
    at = counters.clock.end_of(on) if on else counters.clock.now()
    return at, await registry.facilities(), await figures(counters, on)


async def coverage(
    registry: Registry,
    counters: Counters,
    scope: dict[str, list[str]],
    on: date | None,
    live_days: int,
) -> Row:
    """The coverage report: nationally, per province, per level, per facility."""
    at, known, counted = await snapshot(registry, counters, on)
    rows = [
        facility_row(f, counted.get(f.code, Figures()), at, live_days)
        for f in known.values()
        if f.within(scope)
    ]
    rows.sort(key=lambda r: (r["province"], r["facility"]))
    names = {r["province"]: r["province_name"] for r in rows}
    return {
        "date": counters.clock.day_of(at).isoformat(),
        "live_days": live_days,
        "scope": {k: v for k, v in scope.items() if v},
        "national": summarise(rows) | {"people": await counters.people(on)},
        "provinces": grouped(rows, "province", names),
        "levels": grouped(rows, "level"),
        "facilities": rows,
        # Facilities that sent records but are not in the registry: the registry lags.
        "unregistered_submitters": sorted(set(counted) - set(known)),
    }
