"""Search values of a resource, and the index keys written with it.

Every value a resource holds for a search parameter becomes one or more strings in the one
multikey field `_hub.sv`, prefixed by type and parameter (`Observation.code#8867-4|http://loinc.org`).
One index over that field serves every search; see `keys` for the layout.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hub.search.registry import SearchParam, Step, registry
from hub.search.values import (
    TEXT_KEY_LENGTH,
    BadValue,
    DateRange,
    date_range,
    fold,
    number_key,
    period_range,
)

# Markers between a parameter's prefix and a value. All sort between '!' and ',' so that
# "any value of this parameter" is one range, and none can occur in a parameter's code.
REF_IDENTIFIER = "!"
TOKEN = "#"
NUMBER = "%"
TEXT = "&"
DATE_LOW = "("
DATE_HIGH = ")"
EXACT = "*"
ANY_FIRST, ANY_END = "!", "-"
# Before a patient's reference: the resource is in that patient's compartment.
COMPARTMENT = "@"


@dataclass(frozen=True)
class Token:
    system: str | None
    code: str | None
    text: str | None = None  # display or CodeableConcept.text, folded
    of_type: tuple[tuple[str, str], ...] = ()  # Identifier.type codings


@dataclass(frozen=True)
class Quantity:
    value: Decimal
    system: str | None
    code: str | None
    unit: str | None


@dataclass(frozen=True)
class Reference:
    reference: str | None  # "Type/id", or an absolute URL or canonical
    identifier: tuple[str | None, str] | None = None

    @property
    def type(self) -> str | None:
        parts = (self.reference or "").split("/")
        return parts[-2] if len(parts) >= 2 else None


@dataclass
class Values:
    """The values of one resource for one parameter, already typed."""

    items: list[Any] = field(default_factory=list)


def walk(node: Any, steps: tuple[Step, ...]) -> Iterator[tuple[Any, str]]:
    """Yield the elements a path reaches, with the type suffix of a choice element."""
    if not steps:
        yield node, ""
        return
    step, rest = steps[0], steps[1:]
    if isinstance(node, list):
        for item in node:
            yield from walk(item, steps)
        return
    if not isinstance(node, dict):
        return
    if step.choice:
        for name, value in node.items():
            suffix = name[len(step.name) :]
            if name.startswith(step.name) and suffix[:1].isupper():
                for item, _ in walk(value, rest):
                    yield item, suffix
        return
    value = node.get(step.name)
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    for item in items:
        if step.where and not (isinstance(item, dict) and item.get(step.where[0]) == step.where[1]):
            continue
        yield from walk(item, rest)


def values(resource: dict[str, Any], param: SearchParam) -> list[Any]:
    """Return a resource's values for one parameter, typed for its search type."""
    if param.special == "id":
        return [Token(None, resource.get("id"))]
    found: list[Any] = []
    for path in param.paths:
        first = path[0]
        if not first.choice and first.name not in resource:
            continue  # most parameters find nothing: skip the walk
        for element, suffix in walk(resource, path):
            found.extend(_typed(param, element, suffix))
    return found


def _typed(param: SearchParam, element: Any, suffix: str) -> Iterator[Any]:
    kind = param.type
    try:
        if kind == "token":
            yield from _tokens(param, element, suffix)
        elif kind == "string":
            yield from _strings(element)
        elif kind == "date":
            yield from _dates(element, suffix)
        elif kind == "reference":
            yield from _references(param, element)
        elif kind == "quantity" and isinstance(element, dict) and "value" in element:
            yield Quantity(
                Decimal(str(element["value"])),
                element.get("system"),
                element.get("code") or element.get("currency"),
                element.get("unit"),
            )
        elif kind == "number" and _is_number(element):
            yield Decimal(str(element))
        elif kind == "uri" and isinstance(element, str):
            yield element
    except (BadValue, ArithmeticError):
        return  # stored data the validator let through but that no search can match


def _is_number(element: Any) -> bool:
    return isinstance(element, int | float) and not isinstance(element, bool)


def _tokens(param: SearchParam, element: Any, suffix: str) -> Iterator[Token]:
    if isinstance(element, bool):
        yield Token(None, "true" if element else "false")
    elif isinstance(element, str):
        # A dateTime in a boolean-like choice (Patient.deceasedDateTime) means "true".
        yield Token(None, "true" if suffix == "DateTime" else element)
    elif isinstance(element, dict):
        if "coding" in element or ("text" in element and "value" not in element):
            for coding in element.get("coding") or ():
                yield from _tokens(param, coding, "")
            if isinstance(element.get("text"), str):
                yield Token(None, None, fold(element["text"]))
        elif "value" in element and isinstance(element["value"], str):
            kind = element.get("type") or {}
            of_type = tuple(
                (c.get("system") or "", c.get("code") or "") for c in kind.get("coding") or ()
            )
            text = fold(kind["text"]) if isinstance(kind.get("text"), str) else None
            yield Token(element.get("system"), element["value"], text, of_type)
        elif "code" in element or "display" in element:
            display = element.get("display")
            yield Token(
                element.get("system"),
                element.get("code"),
                fold(display) if isinstance(display, str) else None,
            )


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(element: Any) -> Iterator[str]:
    if isinstance(element, str):
        yield element
    elif isinstance(element, dict):
        for part in _NAME_PARTS + _ADDRESS_PARTS:
            value = element.get(part)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    yield item


def _dates(element: Any, suffix: str) -> Iterator[DateRange]:
    if isinstance(element, str) and suffix in ("", "Date", "DateTime", "Instant"):
        yield date_range(element)
    elif isinstance(element, dict):
        if "start" in element or "end" in element:
            yield period_range(element.get("start"), element.get("end"))
        for event in element.get("event") or ():  # Timing
            yield date_range(event)


def _references(param: SearchParam, element: Any) -> Iterator[Reference]:
    if isinstance(element, str):  # canonical
        yield Reference(element)
        return
    if not isinstance(element, dict):
        return
    ident = element.get("identifier")
    identifier = None
    if isinstance(ident, dict) and isinstance(ident.get("value"), str):
        identifier = (ident.get("system"), ident["value"])
    ref = element.get("reference")
    if isinstance(ref, str) and ref.startswith("#"):
        return  # a contained resource: not searchable on its own
    found = Reference(ref.split("/_history/")[0] if isinstance(ref, str) else None, identifier)
    if found.reference and found.type and param.targets and found.type not in param.targets:
        if not found.reference.startswith(("http:", "https:")):
            return
    if found.reference or found.identifier:
        yield found


def param_keys(resource_type: str, param: SearchParam, items: list[Any]) -> Iterator[str]:
    """Yield the index keys of one parameter's values."""
    prefix = f"{resource_type}.{param.code}"
    for item in items:
        # Each key costs ingest (about 50 us on the embedded server), so values are indexed
        # once: a token's display text, an identifier's type and a quantity's unit are
        # checked on the candidates its code, value or number finds.
        if isinstance(item, Token):
            if item.code is not None:
                yield f"{prefix}{TOKEN}{item.code}|{item.system or ''}"
        elif isinstance(item, str) and param.type == "string":
            yield f"{prefix}{TEXT}{fold(item)[:TEXT_KEY_LENGTH]}"
        elif isinstance(item, str):
            yield f"{prefix}{EXACT}{item}"
        elif isinstance(item, DateRange):
            yield f"{prefix}{DATE_LOW}{item.low}"
            if not item.short:
                yield f"{prefix}{DATE_HIGH}{item.high}"
        elif isinstance(item, Quantity):
            yield f"{prefix}{NUMBER}{number_key(item.value)}"
        elif isinstance(item, Decimal):
            yield f"{prefix}{NUMBER}{number_key(item)}"
        elif isinstance(item, Reference):
            if item.reference:
                yield f"{prefix}{EXACT}{item.reference}"
            if item.identifier:
                yield f"{prefix}{REF_IDENTIFIER}{item.identifier[0] or ''}|{item.identifier[1]}"


def keys(resource: dict[str, Any]) -> list[str]:
    """Return every index key of a resource: its values for the parameters that own keys."""
    resource_type = resource["resourceType"]
    reg = registry()
    found: set[str] = set()
    computed: dict[str, list[Any]] = {}
    for param in reg.indexed(resource_type):
        computed[param.code] = values(resource, param)
        found.update(param_keys(resource_type, param, computed[param.code]))
    # One key per patient whose compartment holds the resource, so that a patient's whole
    # record is one index lookup (a long `$in` over every type's keys costs far more).
    for code in reg.compartment.get(resource_type, ()) if resource_type != "Patient" else ():
        param = reg.params(resource_type)[code]
        refs = computed[code] if code in computed else values(resource, param)
        for ref in refs:
            if isinstance(ref, Reference) and ref.type == "Patient" and ref.reference:
                found.add(f"{COMPARTMENT}{ref.reference}")
    return sorted(found)
