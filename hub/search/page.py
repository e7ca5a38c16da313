"""Order and pages of search results: `_sort`, and cursors that survive concurrent writes.

A page link carries the sort values and key of the last (or first) resource it showed, not an
offset: resources created or deleted meanwhile shift no other resource between pages.
https://hl7.org/fhir/R4/search.html#sort
"""

import base64
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from hub.fhir.outcome import BadRequest
from hub.search.extract import Quantity, Reference, Token, values
from hub.search.registry import SearchParam, registry
from hub.search.values import DateRange, fold
from hub.store.resources import Stored

SortValue = str | float | None


@dataclass(frozen=True)
class SortKey:
    param: SearchParam
    descending: bool


def parse_sort(resource_type: str | None, raw: str | None) -> list[SortKey]:
    """Parse `_sort=date,-_lastUpdated` into sort keys."""
    if not raw:
        return []
    found = []
    for part in raw.split(","):
        code = part.removeprefix("-").strip()
        param = registry().param(resource_type or "Resource", code)
        if param is None:
            raise BadRequest(
                f"Cannot sort {resource_type or 'resources'} by '{code}': no such search parameter",
                expression="_sort",
            )
        found.append(SortKey(param, part.startswith("-")))
    return found


def _scalar(item: Any, descending: bool) -> SortValue:
    if isinstance(item, DateRange):
        return item.high if descending else item.low
    if isinstance(item, Token):
        return item.code or item.text
    if isinstance(item, Quantity):
        return float(item.value)
    if isinstance(item, Decimal):
        return float(item)
    if isinstance(item, Reference):
        return item.reference
    if isinstance(item, str):
        return fold(item)
    return None


def sort_values(stored: Stored, keys: list[SortKey]) -> list[SortValue]:
    """Return a resource's values for each sort key: the least ascending, greatest descending."""
    out: list[SortValue] = []
    for sort in keys:
        if sort.param.special == "lastUpdated":
            out.append(stored.doc["_hub"]["ts"].isoformat())
            continue
        scalars = [_scalar(i, sort.descending) for i in values(stored.doc, sort.param)]
        found = [v for v in scalars if v is not None]
        same_kind = [v for v in found if isinstance(v, type(found[0]))]
        pick = max if sort.descending else min
        out.append(pick(same_kind) if same_kind else None)  # type: ignore[type-var]
    return out


def _compare_one(a: SortValue, b: SortValue, descending: bool) -> int:
    # Resources without a value come last in either direction.
    if a is None or b is None:
        return (a is None) - (b is None)
    if type(a) is not type(b):
        a, b = str(a), str(b)
    result = (a > b) - (a < b)  # type: ignore[operator]
    return -result if descending else result


def compare(a: list[Any], b: list[Any], keys: list[SortKey]) -> int:
    """Compare two rows of (sort values..., key); the key breaks ties, ascending."""
    for i, sort in enumerate(keys):
        result = _compare_one(a[i], b[i], sort.descending)
        if result:
            return result
    return (a[-1] > b[-1]) - (a[-1] < b[-1])


def order(found: list[Stored], keys: list[SortKey]) -> list[tuple[list[Any], Stored]]:
    """Return rows of (sort values + key, resource) in the requested order."""
    rows: list[tuple[list[Any], Stored]] = [
        ([*sort_values(s, keys), s.doc["_id"]], s) for s in found
    ]
    if not keys:
        rows.sort(key=lambda row: str(row[0][-1]))
        return rows

    def by_row(x: tuple[list[Any], Stored], y: tuple[list[Any], Stored]) -> int:
        return compare(x[0], y[0], keys)

    rows.sort(key=functools.cmp_to_key(by_row))
    return rows


def cursor(row: list[Any]) -> str:
    """Encode a row's sort values and key for a page link."""
    return base64.urlsafe_b64encode(orjson.dumps(row)).decode().rstrip("=")


def read_cursor(text: str, name: str) -> list[Any]:
    """Decode a page link's cursor."""
    try:
        row = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadRequest(f"{name} is not a page cursor this hub wrote", expression=name) from None
    if not isinstance(row, list) or not row:
        raise BadRequest(f"{name} is not a page cursor this hub wrote", expression=name)
    return row


def window(
    rows: list[tuple[list[Any], Stored]],
    keys: list[SortKey],
    count: int,
    after: list[Any] | None,
    before: list[Any] | None,
) -> tuple[list[tuple[list[Any], Stored]], bool, bool]:
    """Return one page of rows and whether pages exist before and after it."""
    for name, given in (("_after", after), ("_before", before)):
        if given is not None and len(given) != len(keys) + 1:
            raise BadRequest(f"{name} is not a page cursor of this search", expression=name)
    if before is not None:
        earlier = [r for r in rows if compare(r[0], before, keys) < 0]
        page = earlier[-count:]
        return page, len(earlier) > count, True
    start = 0
    if after is not None:
        start = next((i for i, r in enumerate(rows) if compare(r[0], after, keys) > 0), len(rows))
    page = rows[start : start + count]
    return page, start > 0, start + count < len(rows)
