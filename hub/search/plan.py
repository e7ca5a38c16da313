"""Index predicates of clauses, and the choice of the one that drives a search.

Every predicate is on one indexed field (`_id`, `_hub.sv`, or the type-time index for
`_lastUpdated`) because the embedded server uses the index of the first indexed field of a
filter and scans for `$or`, `$elemMatch` and several conditions on one array field. A clause
whose values need several ranges gives several predicates, run one after another.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.search import extract as k
from hub.search.compartment import keys as compartment_keys
from hub.search.match import approximate, reference_forms
from hub.search.query import Clause, Ordered, TokenValue
from hub.search.values import (
    HIGHEST,
    LOWEST,
    SHORT_SPAN,
    TEXT_KEY_LENGTH,
    fold,
    number_key,
    parse_stamp,
    shift,
)

# A chain or _has resolving to more targets than this filters instead of driving.
MAX_IN = 5000
# Lower ranks drive first. A reference or an identifier names one resource, a code is shared
# by many, a date or number range is narrower with two ends than with one: so resources by id,
# then by what points at one resource (references, identifiers, a compartment), then by codes,
# then by bounded ranges (a day, a value), then by text prefixes, then by open ranges, then by
# anything with a value.
_ID, _ONE, _EXACT, _BOUNDED, _PREFIX, _OPEN, _ANY = range(7)
_BOUNDED_PREFIXES = ("eq", "ap")


@dataclass
class Driver:
    """Predicates that together find every resource a clause can match (and maybe more)."""

    rank: int
    predicates: list[dict[str, Any]]


def _in(field: str, values: list[str]) -> dict[str, Any]:
    unique = sorted(set(values))
    return {field: unique[0] if len(unique) == 1 else {"$in": unique}}


def _after(marker: str) -> str:
    return chr(ord(marker) + 1)


def _range(
    prefix: str,
    marker: str,
    low: str | None,
    high: str | None,
    open_low: bool = False,
    open_high: bool = False,
) -> dict[str, Any]:
    """Return a key range under one marker; None bounds are that marker's ends."""
    lower = "$gt" if open_low else "$gte"
    upper = "$lt" if open_high or high is None else "$lte"
    return {
        "_hub.sv": {
            lower: f"{prefix}{marker}{low or ''}",
            upper: f"{prefix}{marker}{high}" if high is not None else f"{prefix}{_after(marker)}",
        }
    }


def _prefix(key: str) -> dict[str, Any]:
    return {"_hub.sv": {"$gte": key, "$lt": key[:-1] + _after(key[-1])}}


def driver(resource_type: str, clause: Clause) -> Driver | None:
    """Return the index predicates of a clause, or None when no index can find its matches.

    A parameter whose values are indexed under other parameters' keys (`index_codes`) is
    found by their keys, one set of predicates for each.
    """
    if clause.param.special:
        return _driver(resource_type, clause, "")
    found = [
        _driver(resource_type, clause, f"{resource_type}.{code}")
        for code in clause.param.index_codes
    ]
    if any(d is None for d in found):
        return None
    drivers = [d for d in found if d is not None]
    return Driver(max(d.rank for d in drivers), [p for d in drivers for p in d.predicates])


def _driver(resource_type: str, clause: Clause, prefix: str) -> Driver | None:
    param, modifier = clause.param, clause.modifier
    if modifier == "missing":
        if clause.values[0]:
            return None
        any_value = {"$gte": prefix + k.ANY_FIRST, "$lt": prefix + k.ANY_END}
        return Driver(_ANY, [{"_hub.sv": any_value}])
    if modifier in ("not", "contains"):
        return None
    if clause.resolved is not None and len(clause.resolved) > MAX_IN:
        return None
    if clause.resolved is not None:
        if clause.has_param:
            return Driver(_ID, [_in("_id", [f"{resource_type}/{i}" for i in clause.resolved])])
        return Driver(_ONE, [_in("_hub.sv", [f"{prefix}{k.EXACT}{r}" for r in clause.resolved])])
    if param.special == "id":
        return Driver(_ID, [_in("_id", [f"{resource_type}/{v.code}" for v in clause.values])])
    if param.special == "lastUpdated":
        return _last_updated(resource_type, clause)
    kind = param.type
    if kind == "token":
        found = _tokens(prefix, clause.values)
        if found is not None and found.rank == _EXACT and param.code == "identifier":
            found.rank = _ONE
        return found
    if kind == "string":
        texts = [f"{prefix}{k.TEXT}{v[:TEXT_KEY_LENGTH]}" for v in _folded(clause)]
        return Driver(_PREFIX, [_prefix(t) for t in texts])
    if kind == "date":
        ranges = [_date(prefix, v) for v in clause.values]
        if any(r is None for r in ranges):
            return None
        predicates = [p for r in ranges if r is not None for p in r]
        return Driver(_ordered_rank(clause.values), predicates)
    if kind in ("number", "quantity"):
        numbers = [_number(prefix, v) for v in clause.values]
        if any(n is None for n in numbers):
            return None
        return Driver(_ordered_rank(clause.values), [n for n in numbers if n is not None])
    if kind == "reference":
        if modifier == "identifier":
            if any(v.system is None for v in clause.values):
                return None
            keys = [f"{prefix}{k.REF_IDENTIFIER}{v.system}|{v.code}" for v in clause.values]
            return Driver(_ONE, [_in("_hub.sv", keys)])
        forms = [f for v in clause.values for f in reference_forms(clause, v)]
        return Driver(_ONE, [_in("_hub.sv", [f"{prefix}{k.EXACT}{f}" for f in forms])])
    return Driver(_EXACT, [_in("_hub.sv", [f"{prefix}{k.EXACT}{v}" for v in clause.values])])


def _folded(clause: Clause) -> list[str]:
    return [fold(v) if clause.modifier == "exact" else v for v in clause.values]


def _tokens(prefix: str, wanted: list[TokenValue]) -> Driver | None:
    exact: list[str] = []
    ranges: list[dict[str, Any]] = []
    for v in wanted:
        if v.text or v.code is None:
            return None  # display text is not indexed; "system|": keys lead with the code
        if v.system is None:  # and :of-type, whose identifier type is checked afterwards
            ranges.append(_prefix(f"{prefix}{k.TOKEN}{v.code}|"))
        else:
            exact.append(f"{prefix}{k.TOKEN}{v.code}|{v.system}")
    # A code in any system is a prefix of one code: about as narrow as the code itself.
    return Driver(_EXACT, ([_in("_hub.sv", exact)] if exact else []) + ranges)


def _date(prefix: str, v: Ordered) -> list[dict[str, Any]] | None:
    """Return the key ranges of a date comparison.

    Comparisons on a value's end read the end keys of long values and, since short values
    (a day or less) are indexed by their start alone, the start keys from a day earlier.
    """
    low, high = k.DATE_LOW, k.DATE_HIGH
    day = -SHORT_SPAN
    match v.prefix:
        case "eq":
            return [_range(prefix, low, v.low, v.high)]
        case "gt":
            return [
                _range(prefix, high, v.high, HIGHEST, open_low=True),
                _range(prefix, low, shift(v.high, day), HIGHEST, open_low=True),
            ]
        case "ge":
            return [
                _range(prefix, high, v.low, HIGHEST),
                _range(prefix, low, shift(v.low, day), HIGHEST),
            ]
        case "lt":
            return [_range(prefix, low, LOWEST, v.low, open_high=True)]
        case "le":
            return [_range(prefix, low, LOWEST, v.high)]
        case "sa":
            return [_range(prefix, low, v.high, HIGHEST, open_low=True)]
        case "eb":
            return [
                _range(prefix, high, LOWEST, v.low, open_high=True),
                _range(prefix, low, LOWEST, v.low, open_high=True),
            ]
        case "ap":
            near = approximate(v)
            return [
                _range(prefix, high, near.low, HIGHEST),
                _range(prefix, low, shift(near.low, day), near.high),
            ]
    return None  # ne


def _number(prefix: str, v: Ordered) -> dict[str, Any] | None:
    number = v.number  # a unit or system is checked on the candidates
    assert number is not None
    match v.prefix:
        case "eq":
            return _range(prefix, k.NUMBER, number_key(v.low), number_key(v.high), open_high=True)
        case "gt" | "sa":
            return _range(prefix, k.NUMBER, number_key(number), None, open_low=True)
        case "ge":
            return _range(prefix, k.NUMBER, number_key(number), None)
        case "lt" | "eb":
            return _range(prefix, k.NUMBER, None, number_key(number), open_high=True)
        case "le":
            return _range(prefix, k.NUMBER, None, number_key(number))
        case "ap":
            spread = abs(number) / 10
            low, high = number_key(number - spread), number_key(number + spread)
            return _range(prefix, k.NUMBER, low, high)
    return None  # ne


def _last_updated(resource_type: str, clause: Clause) -> Driver | None:
    """Drive `_lastUpdated` by the type-time index: type first, then a time range."""
    predicates = []
    for v in clause.values:
        low = _time(v.low)
        high = _time(v.high)
        bounds = {
            "eq": {"$gte": low, "$lte": high},
            "gt": {"$gt": high},
            "sa": {"$gt": high},
            "ge": {"$gte": low},
            "lt": {"$lt": low},
            "eb": {"$lt": low},
            "le": {"$lte": high},
        }.get(v.prefix)
        if bounds is None:
            return None
        predicates.append({"resourceType": resource_type, "_hub.ts": bounds})
    return Driver(_ordered_rank(clause.values), predicates)


def _ordered_rank(wanted: list[Ordered]) -> int:
    """Rank date and number comparisons: bounded on both ends, or open on one."""
    return _BOUNDED if all(v.prefix in _BOUNDED_PREFIXES for v in wanted) else _OPEN


def _time(digits: str) -> datetime:
    if digits == HIGHEST:
        return datetime.max.replace(tzinfo=UTC)
    return parse_stamp(digits)


def compartment(resource_type: str, patient_ids: list[str]) -> Driver:
    """Return the predicate of a type's resources in these patients' compartments."""
    if resource_type == "Patient":
        return Driver(_ID, [_in("_id", [f"Patient/{i}" for i in patient_ids])])
    keys = compartment_keys(patient_ids, [resource_type])
    return Driver(_ONE, [_in("_hub.sv", keys)])


def ranked(resource_type: str, clauses: list[Clause], extra: list[Driver]) -> list[Driver]:
    """Return the drivers of the clauses that can drive, the most selective first (ties in the
    order of the query)."""
    found = [d for d in (driver(resource_type, c) for c in clauses) if d is not None] + extra
    return sorted(found, key=lambda d: d.rank)


def best(resource_type: str, clauses: list[Clause], extra: list[Driver]) -> Driver | None:
    """Return the driver of the most selective clause, or None if none can drive."""
    found = ranked(resource_type, clauses, extra)
    return found[0] if found else None
