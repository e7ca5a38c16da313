"""Whether a resource meets a clause, exactly as the specification says.

The index finds candidates; this decides. Every candidate passes here, so an index key that
matches too much (a prefix, a two-sided range over an array) never shows in a result.
https://hl7.org/fhir/R4/search.html#prefix
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hub.search.extract import Quantity, Reference, Token, values
from hub.search.query import Clause, Ordered, Query, TokenValue
from hub.search.values import DateRange, fold, parse_stamp, stamp

# "ap" is within this share of the distance between the value and now (dates), or of the
# value itself (numbers), as the specification recommends.
_APPROXIMATE = Decimal("0.1")


def matches(query: Query, resource: dict[str, Any]) -> bool:
    """Tell whether a resource meets every clause of a query."""
    return all(clause_matches(c, resource) for c in query.clauses)


def clause_matches(clause: Clause, resource: dict[str, Any]) -> bool:
    """Tell whether a resource meets one clause: any of its values."""
    if clause.resolved is not None:
        if clause.has_param:
            return str(resource.get("id")) in clause.resolved
        found = values(resource, clause.param)
        return any(isinstance(r, Reference) and r.reference in clause.resolved for r in found)
    found = values(resource, clause.param)
    if clause.modifier == "missing":
        return (not found) == clause.values[0]
    if clause.modifier == "not":
        return not any(_token(v, t) for v in clause.values for t in found)
    return any(_one(clause, v, item) for v in clause.values for item in found)


def _one(clause: Clause, wanted: Any, item: Any) -> bool:
    kind = clause.param.type
    if kind == "token":
        return _token(wanted, item)
    if kind == "string":
        return _string(clause.modifier, wanted, item)
    if kind == "date":
        return isinstance(item, DateRange) and _date(wanted, item)
    if kind == "number":
        return isinstance(item, Decimal) and _number(wanted, item)
    if kind == "quantity":
        return isinstance(item, Quantity) and _quantity(wanted, item)
    if kind == "reference":
        return isinstance(item, Reference) and _reference(clause, wanted, item)
    return isinstance(item, str) and item == wanted


def _token(wanted: TokenValue, item: Token) -> bool:
    if wanted.text:
        return bool(item.text) and item.text.startswith(wanted.text)  # type: ignore[union-attr]
    if wanted.of_type is not None:
        return item.code == wanted.code and wanted.of_type in item.of_type
    if wanted.code is not None and item.code != wanted.code:
        return False
    if wanted.system is None:
        return item.code is not None
    return (item.system or "") == wanted.system


def _string(modifier: str, wanted: str, item: str) -> bool:
    if modifier == "exact":
        return item == wanted
    if modifier == "contains":
        return wanted in fold(item)
    return fold(item).startswith(wanted)


def _date(wanted: Ordered, item: DateRange) -> bool:
    low, high = wanted.low, wanted.high
    inside = low <= item.low and item.high <= high
    prefix = wanted.prefix
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return not inside
    if prefix == "gt":
        return item.high > high
    if prefix == "ge":
        return item.high > high or inside
    if prefix == "lt":
        return item.low < low
    if prefix == "le":
        return item.low < low or inside
    if prefix == "sa":
        return item.low > high
    if prefix == "eb":
        return item.high < low
    return item.overlaps(approximate(wanted))


def approximate(wanted: Ordered) -> DateRange:
    """Return the range `ap` stands for: the value widened by a tenth of its distance to now."""
    start = parse_stamp(wanted.low)
    gap = abs(datetime.now(UTC) - start) * 0.1
    end = parse_stamp(wanted.high)
    return DateRange(stamp(max(start - gap, datetime.min.replace(tzinfo=UTC))), stamp(end + gap))


def _number(wanted: Ordered, value: Decimal) -> bool:
    number = wanted.number
    assert number is not None
    prefix = wanted.prefix
    if prefix == "eq":
        return bool(wanted.low <= value < wanted.high)
    if prefix == "ne":
        return not wanted.low <= value < wanted.high
    if prefix in ("gt", "sa"):
        return value > number
    if prefix in ("lt", "eb"):
        return value < number
    if prefix == "ge":
        return value >= number
    if prefix == "le":
        return value <= number
    spread = abs(number) * _APPROXIMATE
    return number - spread <= value <= number + spread


def _quantity(wanted: Ordered, item: Quantity) -> bool:
    if wanted.system is not None and item.system != wanted.system:
        return False
    if wanted.unit is not None and wanted.unit not in (item.code, item.unit):
        return False
    return _number(wanted, item.value)


def _reference(clause: Clause, wanted: Any, item: Reference) -> bool:
    if clause.modifier == "identifier":
        if item.identifier is None:
            return False
        system, value = item.identifier
        return value == wanted.code and (wanted.system is None or (system or "") == wanted.system)
    return item.reference in reference_forms(clause, wanted)


def reference_forms(clause: Clause, wanted: str) -> list[str]:
    """Return the stored references a reference search value stands for."""
    if clause.target:
        return [f"{clause.target}/{wanted.rsplit('/', 1)[-1]}"]
    if "/" in wanted:
        return [wanted]
    return [f"{t}/{wanted}" for t in clause.param.targets]
