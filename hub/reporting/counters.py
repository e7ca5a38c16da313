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

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

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


@dataclass
class Tally:
    """What one commit adds to a facility's counters."""

    records: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    delay_seconds: float = 0.0
    delays: int = 0
    timely: int = 0
    national_ids: list[str] = field(default_factory=list)

    def add(self, stored: Stored, created: bool, arrived: datetime, national: str) -> None:
        """Count one written version: a new record, a deletion, or an update."""
        rtype = stored.resource_type
        if stored.deleted:
            self.records[rtype] -= 1
            self.patients -= rtype == "Patient"
            return
        if created:
            self.records[rtype] += 1
            self.patients += rtype == "Patient"
            happened = event_time(stored.resource)
            if happened is not None:
                delay = max(timedelta(0), arrived - happened)
                self.delay_seconds += delay.total_seconds()
                self.delays += 1
                self.timely += delay <= TIMELY
        if rtype == "Patient":
            for identifier in stored.resource.get("identifier") or []:
                value = identifier.get("value") if isinstance(identifier, dict) else None
                if identifier.get("system") == national and isinstance(value, str):
                    self.national_ids.append(value)

    def increments(self) -> dict[str, float]:
        found: dict[str, float] = {f"records.{t}": n for t, n in self.records.items() if n}
        for name in ("patients", "delay_seconds", "delays", "timely"):
            if getattr(self, name):
                found[name] = getattr(self, name)
        return found


class Counters:
    """The reporting counters of one database."""

    def __init__(self, mongo: Mongo, zone: tzinfo, national_id_system: str) -> None:
        self.stats = mongo.stats
        self.persons = mongo.persons
        self.zone = zone
        self.national = national_id_system

    def day(self, t: datetime) -> str:
        """Return the day of an instant in the country's time zone, as yyyy-mm-dd."""
        return t.astimezone(self.zone).date().isoformat()

    async def accepted(
        self, facility: str | None, written: list[tuple[Stored, bool]], when: datetime
    ) -> None:
        """Count an accepted submission and what it wrote: (version, whether it created the
        record). A write no facility made (the registry's) counts only its people."""
        tally = Tally()
        for stored, created in written:
            tally.add(stored, created, when, self.national)
        try:
            new_people = await self._people(tally.national_ids, facility, when)
            if facility is None:
                return
            increments = tally.increments() | {"accepted": 1}
            if new_people:
                increments["people"] = new_people
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

    async def _add(
        self, facility: str, when: datetime, increments: dict[str, float], total: dict[str, Any]
    ) -> None:
        """Add to a facility's running totals (with `total`'s further updates) and its day's."""
        day = self.day(when)
        named = {"kind": "facility", "facility": facility}
        await self.stats.bulk_write(
            [
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
            ],
            ordered=False,
        )

    async def _people(self, national_ids: list[str], facility: str | None, when: datetime) -> int:
        """Note each person by national ID; return how many had no record before."""
        if not national_ids:
            return 0
        day = self.day(when)
        first = {"first": when, "day": day, "facility": facility}
        result = await self.persons.bulk_write(
            [
                UpdateOne({"_id": value}, {"$setOnInsert": first}, upsert=True)
                for value in dict.fromkeys(national_ids)
            ],
            ordered=False,
        )
        new = result.upserted_count
        if new:
            await self.stats.update_one(
                {"_id": f"n|{day}"},
                {"$inc": {"people": new}, "$set": {"kind": "people", "day": day}},
                upsert=True,
            )
        return new

    async def facilities(self) -> list[dict[str, Any]]:
        """Return every facility's running totals."""
        return [doc async for doc in self.stats.find({"kind": "facility"})]

    async def days(self, since: str, until: str) -> list[dict[str, Any]]:
        """Return the per-facility day documents of a span of days (inclusive)."""
        query = {"kind": "day", "day": {"$gte": since, "$lte": until}}
        return [doc async for doc in self.stats.find(query)]

    async def people(self, on: date | None = None) -> int:
        """Return how many people have a record (distinct national IDs): now, or at the end
        of a day."""
        if on is None:
            return int(await self.persons.count_documents({}))
        query = {"kind": "people", "day": {"$lte": on.isoformat()}}
        return sum([int(doc.get("people", 0)) async for doc in self.stats.find(query)])
