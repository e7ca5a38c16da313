"""Search values in comparable form: folded text, date ranges, order-preserving numbers.

Stored index keys are strings, so every value is written so that string order is value order:
dates as fixed-width UTC digits, numbers as the hex of their IEEE-754 bits with the sign flipped.
https://hl7.org/fhir/R4/search.html#date  https://hl7.org/fhir/R4/search.html#number
"""

import re
import struct
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation

# FHIR date, dateTime and instant, and the search forms of them (minutes without seconds).
_DATE = re.compile(
    r"(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# Written in place of a missing bound: before and after every date a resource can carry.
LOWEST = "0" * 17
HIGHEST = "9" * 17
# Longest text kept in an index key; longer search values match on this prefix, then exactly.
TEXT_KEY_LENGTH = 64
_SPACES = re.compile(r"\s+")


class BadValue(ValueError):
    """A search value that cannot be read as its parameter's type."""


def fold(text: str) -> str:
    """Return text without case, accents and repeated spaces: 'Nguyễn  Văn' -> 'nguyen van'."""
    if text.isascii():
        return " ".join(text.split()).lower()
    # đ has no decomposition in Unicode: it is a letter of its own, folded by hand.
    text = text.replace("đ", "d").replace("Đ", "d")
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", bare).strip().casefold()


# Values spanning at most this long (a day, or a time) are indexed by their start alone:
# one index key instead of two, and searches on the end look from a day earlier.
SHORT_SPAN = timedelta(days=1)


@dataclass(frozen=True)
class DateRange:
    """The span a date value covers at its precision, as two 17-digit UTC stamps (inclusive)."""

    low: str
    high: str
    short: bool = False  # spans at most SHORT_SPAN

    def overlaps(self, other: "DateRange") -> bool:
        return self.low <= other.high and other.low <= self.high


def stamp(t: datetime) -> str:
    """Return a UTC time as 17 digits, yyyyMMddHHmmssSSS."""
    t = t.astimezone(UTC)
    return t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}"


# The deployment's zone (`EHRHUB_UTC_OFFSET_MINUTES`; set once by hub/app.py): a date without
# a zone is read there, as FHIR asks of a server's local dates, so that a day stored or searched
# for is the country's day, the day a clinician means.
_local: tzinfo = timezone(timedelta(hours=7))


def use_zone(zone: tzinfo) -> None:
    """Read dates without a zone in this zone from now on (the deployment's)."""
    global _local
    _local = zone


def date_range(text: str) -> DateRange:
    """Return the range a FHIR date, dateTime or instant covers; without a zone, a day (or
    month, year) of the deployment's zone."""
    match = _DATE.fullmatch(text.strip())
    if not match:
        raise BadValue(
            f"'{text}' is not a date such as 2024, 2024-03, 2024-03-15 or 2024-03-15T08:30+07:00"
        )
    g = match.groupdict()
    zone = g["zone"]
    tz: tzinfo = _local if not zone else UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        begin = _start(g, tz)
        low = stamp(begin)
    except (ValueError, OverflowError):
        raise BadValue(f"'{text}' is not a real date") from None
    try:
        finish = begin + _precision(g, begin)
        high = stamp(max(finish - timedelta(milliseconds=1), begin))
    except (ValueError, OverflowError):  # the precision reaches past year 9999
        finish, high = None, HIGHEST
    return DateRange(low, high, finish is not None and finish - begin <= SHORT_SPAN)


def _start(g: dict[str, str | None], tz: tzinfo) -> datetime:
    """Return the first instant a parsed date covers."""
    fraction = g["fraction"]
    return datetime(
        int(g["year"] or 0),
        int(g["month"] or 1),
        int(g["day"] or 1),
        int(g["hour"] or 0),
        int(g["minute"] or 0),
        int(g["second"] or 0),
        int(fraction[1:][:6].ljust(6, "0")) if fraction else 0,
        tzinfo=tz,
    )


def _precision(g: dict[str, str | None], start: datetime) -> timedelta:
    """Return how long a parsed date lasts at its precision: a year, a month, ... a microsecond."""
    if g["month"] is None:
        return start.replace(year=start.year + 1) - start
    if g["day"] is None:
        month = start.month
        return start.replace(year=start.year + month // 12, month=month % 12 + 1) - start
    if g["hour"] is None:
        return timedelta(days=1)
    if g["second"] is None:
        return timedelta(minutes=1)
    fraction = g["fraction"]
    if fraction:
        return timedelta(microseconds=10 ** max(0, 6 - len(fraction[1:])))
    return timedelta(seconds=1)


def period_range(start: str | None, end: str | None) -> DateRange:
    """Return the range of a Period; a missing bound is open."""
    low = date_range(start).low if start else LOWEST
    high = date_range(end).high if end else HIGHEST
    short = bool(start and end) and parse_stamp(high) - parse_stamp(low) < SHORT_SPAN
    return DateRange(low, high, short)


def parse_stamp(digits: str) -> datetime:
    """Read a 17-digit stamp back into a UTC time."""
    return datetime.strptime(digits, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)


def shift(digits: str, delta: timedelta) -> str:
    """Return a stamp moved by `delta`, kept within the stamps' bounds."""
    if digits in (LOWEST, HIGHEST):
        return digits
    try:
        return stamp(parse_stamp(digits) + delta)
    except OverflowError:
        return LOWEST if delta < timedelta(0) else HIGHEST


def decimal(text: str) -> Decimal:
    """Parse a search number, refusing what is not one."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadValue(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise BadValue(f"'{text}' is not a finite number")
    return value


def precision_range(value: Decimal) -> tuple[Decimal, Decimal]:
    """Return the interval a number stands for at its precision: 100 is [99.5, 100.5)."""
    exponent = value.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return value - half, value + half


def number_key(value: float | Decimal) -> str:
    """Return 16 hex digits whose string order is the numbers' order."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(value)))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63
    return f"{bits:016x}"
