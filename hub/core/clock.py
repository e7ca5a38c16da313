"""The hub's one clock: every "now" the hub stamps and every "today" it counts comes from here.

Days are the deployment's local days (the country's offset from UTC, `EHRHUB_UTC_OFFSET_MINUTES`):
a submission at 01:00 in Hanoi (18:00 UTC the day before) counts on the Hanoi day. Tests set
the clock to an instant (`set`) to cross a day boundary on purpose.
"""

from datetime import UTC, date, datetime, time, timedelta, tzinfo


class Clock:
    """The current instant, and the local day of any instant, in one zone."""

    def __init__(self, zone: tzinfo, at: datetime | None = None) -> None:
        self.zone = zone
        self._at: datetime | None = None
        self.set(at)

    def set(self, at: datetime | None) -> None:
        """Stop the clock at an instant (aware); None lets it follow the system clock again."""
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise ValueError("Clock.set needs an aware datetime")
        self._at = at.astimezone(UTC) if at is not None else None

    def now(self) -> datetime:
        """Return the current instant in UTC, at the millisecond precision MongoDB keeps."""
        t = self._at if self._at is not None else datetime.now(UTC)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    def today(self) -> date:
        """Return the deployment's local day now."""
        return self.day_of(self.now())

    def day_of(self, instant: datetime) -> date:
        """Return the local day of an instant (a naive one is taken as UTC)."""
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        return instant.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        """Return the first instant of a local day."""
        return datetime.combine(day, time(), self.zone)

    def end_of(self, day: date) -> datetime:
        """Return the last instant (to the millisecond) of a local day."""
        return self.start_of(day + timedelta(days=1)) - timedelta(milliseconds=1)
