"""Counters kept current as data arrives: what the ministry's reports read, never a scan.

After each accepted write (a single write, or a whole transaction or batch entry) the hub adds
to two documents of the `stats` collection, in one round trip, outside the write's own
transaction (a counter is not worth a conflict between two hospitals' bundles):

- `f|<facility>`: first and last accepted submission, submissions accepted and refused,
  current records by type, Patients, the delay from the clinical event to its arrival (sum,
  count, and how many arrived within a day);
- `d|<facility>|<day>`: the same, for one day in the country's time zone. Summing the days up
  to a date reproduces that date's figures, so trends are drawn from them.

People with a record are counted by national ID in `persons` (one document each, its first
facility and day): a person is new when that insert happens, and `n|<day>` counts them.

If the process dies between a commit and its counters, the counters lag by that write.
"""

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from hub.core.clock import Clock
from hub.search.values import BadValue, date_range, parse_stamp
from hub.store.mongo import Mongo
from hub.store.resources import Stored

log = logging.getLogger("ehrhub.reporting")

# Where a record says when its clinical event happened, most telling first.
EVENT_TIMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "Encounter": (("period", "end"), ("period", "start")),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "end"), ("effectiveInstant",)),
    "DiagnosticReport": (("effectiveDateTime",), ("effectivePeriod", "end"), ("issued",)),
    "Condition": (("recordedDate",), ("onsetDateTime",)),
    "Procedure": (("performedDateTime",), ("performedPeriod", "end")),
    "MedicationRequest": (("authoredOn",),),
    "Immunization": (("occurrenceDateTime",),),
    "AllergyIntolerance": (("recordedDate",),),
}
# How many past days' kept totals a process remembers.
KEPT_REMEMBERED = 32
# A record arriving within this long of its event is "timely" for the live axis.
TIMELY = timedelta(days=1)


def facility_key(facility: str) -> str:
    return f"f|{facility}"


def day_key(facility: str, day: str) -> str:
    return f"d|{facility}|{day}"


def event_time(resource: dict[str, Any]) -> datetime | None:
    """Return when a record's clinical event happened, if it says."""
    for path in EVENT_TIMES.get(str(resource.get("resourceType")), ()):
        value: Any = resource
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, str):
            try:
                return parse_stamp(date_range(value).high)
            except BadValue:
                return None
    return None


# The quality flags a checked version keeps (`_hub.q`, hub/fhir/profiling.py).
FLAGS = ("valid", "complete", "coded", "identified")
# Rule ids hold dots, which a MongoDB field name cannot: they are kept with this instead.
DOT = "\u2024"


def rule_field(rule: str) -> str:
    """Return the counter field of a national-profile rule."""
    return "rules." + rule.replace(".", DOT)


def rule_of(name: str) -> str:
    """Return the rule of a counter field name (under `rules`)."""
    return name.replace(DOT, ".")


def _quality(version: Stored | None) -> dict[str, Any] | None:
    if version is None or version.deleted:
        return None
    found: dict[str, Any] | None = version.doc["_hub"].get("q")
    return found


@dataclass
class Tally:
    """What one commit adds to a facility's counters."""

    counts: Counter[str] = field(default_factory=Counter)
    delay_seconds: float = 0.0
    national_ids: list[str] = field(default_factory=list)

    def add(
        self, stored: Stored, previous: Stored | None, arrived: datetime, national: str
    ) -> None:
        """Count one written version (a new record, an update, a deletion): against the
        version it replaced."""
        rtype = stored.resource_type
        created = previous is None or previous.deleted
        self._quality(_quality(stored), +1)
        self._quality(_quality(previous), -1)
        if stored.deleted:
            self.counts[f"records.{rtype}"] -= 1
            self.counts["patients"] -= rtype == "Patient"
            return
        if not created:
            return
        self.counts[f"records.{rtype}"] += 1
        self.counts["patients"] += rtype == "Patient"
        if rtype == "Consent":
            kind = (stored.resource.get("provision") or {}).get("type", "permit")
            self.counts[f"consents_{'deny' if kind == 'deny' else 'permit'}"] += 1
        happened = event_time(stored.resource)
        if happened is not None:
            delay = max(timedelta(0), arrived - happened)
            self.delay_seconds += delay.total_seconds()
            self.counts["delays"] += 1
            self.counts["timely"] += delay <= TIMELY
        if rtype == "Patient":
            for identifier in stored.resource.get("identifier") or []:
                value = identifier.get("value") if isinstance(identifier, dict) else None
                if identifier.get("system") == national and isinstance(value, str):
                    self.national_ids.append(value)

    def _quality(self, q: dict[str, Any] | None, sign: int) -> None:
        """Add (or take back) a checked version's flags and the rules it breaks."""
        if q is None:
            return
        self.counts["q.checked"] += sign
        for flag in FLAGS:
            self.counts[f"q.{flag}"] += sign * bool(q.get(flag))
        self.counts["q.patients"] += sign * (q.get("identified") is not None)
        for rule in {f["rule"] for f in q.get("findings") or ()}:
            self.counts[rule_field(rule)] += sign

    def increments(self) -> dict[str, float]:
        found: dict[str, float] = {name: n for name, n in self.counts.items() if n}
        if self.delay_seconds:
            found["delay_seconds"] = self.delay_seconds
        return found


class Counters:
    """The reporting counters of one database."""

    def __init__(
        self, mongo: Mongo, clock: Clock, national_id_system: str, cache_seconds: float = 10.0
    ) -> None:
        self.stats = mongo.stats
        self.persons = mongo.persons
        # Days are the deployment's local days, and the reports' "today" is the clock's.
        self.clock = clock
        self.national = national_id_system
        # The running totals are read once for many reports and kept up to date with what
        # this process counts; read again in the background after `cache_seconds` (another
        # process's counts).
        self.cache_seconds = cache_seconds
        self._totals: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._people_now: tuple[float, int] | None = None
        # Past days' totals never change once kept: the last few asked for are remembered.
        self._kept: dict[str, list[dict[str, Any]]] = {}

    def day(self, t: datetime) -> str:
        """Return the local day of an instant (the clock's zone), as yyyy-mm-dd."""
        return self.clock.day_of(t).isoformat()

    async def accepted(
        self, facility: str | None, written: list[tuple[Stored, Stored | None]], when: datetime
    ) -> None:
        """Count an accepted submission and what it wrote: each version, and the one it
        replaced. A write no facility made (the registry's) counts only its people."""
        tally = Tally()
        for stored, previous in written:
            tally.add(stored, previous, when, self.national)
        try:
            new_people, duplicates = await self._people(tally.national_ids, facility, when)
            if facility is None:
                return
            increments = tally.increments() | {"accepted": 1}
            if new_people:
                increments["people"] = new_people
            if duplicates:
                increments["duplicates"] = duplicates
            await self._add(
                facility, when, increments, {"$min": {"first": when}, "$max": {"last": when}}
            )
        except PyMongoError as error:  # the write stands; its counters lag
            log.error("counters not updated for %s: %s", facility, error)

    async def refused(self, facility: str, when: datetime) -> None:
        """Count a submission the hub refused."""
        try:
            await self._add(facility, when, {"refused": 1}, {})
        except PyMongoError as error:
            log.error("counters not updated for %s: %s", facility, error)

    async def exchanged(self, reader: str, holders: Counter[str], when: datetime) -> None:
        """Count records a facility (its system or clinicians) read that other facilities
        hold: in to the reader, out from each holder."""
        out = {holder: n for holder, n in holders.items() if holder != reader}
        if not out:
            return
        updates = self._updates(reader, when, {"exchanged_in": sum(out.values())}, {})
        for holder, n in out.items():
            updates += self._updates(holder, when, {"exchanged_out": n}, {})
        try:
            await self.stats.bulk_write(updates, ordered=False)
        except PyMongoError as error:
            log.error("exchange counters not updated for %s: %s", reader, error)

    async def _add(
        self, facility: str, when: datetime, increments: dict[str, float], total: dict[str, Any]
    ) -> None:
        """Add to a facility's running totals (with `total`'s further updates) and its day's."""
        await self.stats.bulk_write(self._updates(facility, when, increments, total), ordered=False)

    def _updates(
        self, facility: str, when: datetime, increments: dict[str, float], total: dict[str, Any]
    ) -> list[UpdateOne]:
        """Return the updates of a facility's totals and its day's, and apply them to the
        totals this process remembers."""
        self._remember(facility, when, increments, total)
        day = self.day(when)
        named = {"kind": "facility", "facility": facility}
        return [
            UpdateOne(
                {"_id": facility_key(facility)},
                {"$inc": increments, "$set": named, **total},
                upsert=True,
            ),
            UpdateOne(
                {"_id": day_key(facility, day)},
                {"$inc": increments, "$set": named | {"kind": "day", "day": day}},
                upsert=True,
            ),
        ]

    async def _people(
        self, national_ids: list[str], facility: str | None, when: datetime
    ) -> tuple[int, int]:
        """Note each new Patient by national ID: return how many people had no record
        before, and how many of these Patients duplicate one the facility already holds."""
        if not national_ids:
            return 0, 0
        day = self.day(when)
        first = {"first": when, "day": day, "facility": facility}
        held = f"at.{(facility or '-').replace('.', DOT)}"  # Patients per facility
        each = Counter(national_ids)
        result = await self.persons.bulk_write(
            [
                UpdateOne({"_id": value}, {"$setOnInsert": first, "$inc": {held: n}}, upsert=True)
                for value, n in each.items()
            ],
            ordered=False,
        )
        new = result.upserted_count
        if new and self._people_now is not None:
            self._people_now = (self._people_now[0], self._people_now[1] + new)
        if new:
            await self.stats.update_one(
                {"_id": f"n|{day}"},
                {"$inc": {"people": new}, "$set": {"kind": "people", "day": day}},
                upsert=True,
            )
        # Every Patient of a person beyond the first at the same facility is a duplicate.
        duplicates = 0
        async for doc in self.persons.find({"_id": {"$in": list(each)}}, {held: 1}):
            now_held = int(doc.get("at", {}).get(held[3:], 0))
            duplicates += each[doc["_id"]] - (now_held == each[doc["_id"]])
        return new, duplicates

    def _remember(
        self, facility: str, when: datetime, increments: dict[str, float], total: dict[str, Any]
    ) -> None:
        """Apply a facility's counter updates to the totals remembered (if any)."""
        if self._totals is None:
            return
        doc = self._totals[1].setdefault(facility, {"kind": "facility", "facility": facility})
        for name, n in increments.items():
            where = doc
            *path, last = name.split(".")
            for part in path:
                where = where.setdefault(part, {})
            where[last] = where.get(last, 0) + n
        if "$min" in total:
            doc["first"] = min(doc.get("first") or when, when)
            doc["last"] = max(doc.get("last") or when, when)

    async def facilities(self) -> list[dict[str, Any]]:
        """Return every facility's running totals. Once they are older than `cache_seconds`,
        they are read again in the background while the remembered ones answer."""
        if self._totals is None:
            await self._read_totals()
        elif time.monotonic() - self._totals[0] >= self.cache_seconds and self._reading is None:
            self._reading = asyncio.create_task(self._read_totals())
            self._reading.add_done_callback(self._read)
        assert self._totals is not None
        return list(self._totals[1].values())

    async def _read_totals(self) -> None:
        clock = time.monotonic()
        docs = {doc["facility"]: doc async for doc in self.stats.find({"kind": "facility"})}
        self._totals = (clock, docs)

    def _read(self, task: "asyncio.Task[None]") -> None:
        self._reading = None
        if not task.cancelled() and task.exception() is not None:
            log.error("counters not read again: %s", task.exception())

    def forget(self) -> None:
        """Read the running totals and kept days afresh next time (they were changed behind
        the counters' back, as a benchmark filling them does)."""
        self._totals = self._people_now = None
        self._kept.clear()

    async def snapshot(self, day: str) -> list[dict[str, Any]] | None:
        """Return every facility's totals at the end of a past day, if kept (`keep`)."""
        if day in self._kept:
            return self._kept[day]
        if await self.stats.find_one({"_id": f"S|{day}"}) is None:
            return None
        docs = [doc async for doc in self.stats.find({"kind": "snapshot", "day": day})]
        if len(self._kept) >= KEPT_REMEMBERED:
            self._kept.pop(next(iter(self._kept)))
        self._kept[day] = docs
        return docs

    async def latest_snapshot(self, before: str) -> str | None:
        """Return the last day before this one whose totals are kept."""
        query = {"kind": "snapshot-kept", "day": {"$lt": before}}
        found = await self.stats.find_one(query, sort=[("kind", 1), ("day", -1)])
        return str(found["day"]) if found else None

    async def keep(self, day: str, totals: dict[str, dict[str, Any]]) -> None:
        """Keep every facility's totals at the end of a past day: a day's counters never
        change once it is over, so they are summed once."""
        docs = [
            {"_id": f"s|{facility}|{day}", "kind": "snapshot", "day": day, "facility": facility}
            | doc
            for facility, doc in totals.items()
        ]
        for start in range(0, len(docs), 1000):
            updates = [
                UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True)
                for d in docs[start : start + 1000]
            ]
            await self.stats.bulk_write(updates, ordered=False)
        marker = {"kind": "snapshot-kept", "day": day}
        await self.stats.update_one({"_id": f"S|{day}"}, {"$set": marker}, upsert=True)

    async def days(self, since: str, until: str) -> list[dict[str, Any]]:
        """Return the per-facility day documents of a span of days (inclusive)."""
        query = {"kind": "day", "day": {"$gte": since, "$lte": until}}
        return [doc async for doc in self.stats.find(query)]

    async def people(self, on: date | None = None) -> int:
        """Return how many people have a record (distinct national IDs): now, or at the end
        of a day. Summed from the day counters: no person is counted on the way."""
        clock = time.monotonic()
        now = self._people_now
        if on is None and now is not None and clock - now[0] < self.cache_seconds:
            return now[1]
        query: dict[str, Any] = {"kind": "people"}
        if on is not None:
            query["day"] = {"$lte": on.isoformat()}
        found = sum([int(doc.get("people", 0)) async for doc in self.stats.find(query)])
        if on is None:
            self._people_now = (clock, found)
        return found
