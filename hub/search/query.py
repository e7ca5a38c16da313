"""Search parameters of a request, parsed into clauses: what to match, before how to find it.

A clause is one parameter occurrence; its values are OR-ed, clauses are AND-ed.
https://hl7.org/fhir/R4/search.html
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hub.fhir.outcome import BadRequest
from hub.fhir.resource_types import R4_RESOURCE_TYPES
from hub.search.registry import COMMON, MODIFIERS, ORDERED, PREFIXES, SearchParam, registry
from hub.search.values import BadValue, DateRange, date_range, decimal, fold, precision_range

# Parameters about the result, not the match.
CONTROL = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        "_include",
        "_revinclude",
        "_format",
        "_pretty",
        "_contained",
        "_containedType",
        "_after",
        "_before",
        "_type",
    }
)


class Unknown(Exception):
    """A parameter this hub does not know; ignored or refused as the client prefers."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(why)
        self.name = name


@dataclass(frozen=True)
class TokenValue:
    system: str | None  # None: any system
    code: str | None  # None: any code ("system|")
    text: str = ""  # :text, folded
    of_type: tuple[str, str] | None = None  # :of-type system and code


@dataclass(frozen=True)
class Ordered:
    """A number, quantity or date with its comparison prefix."""

    prefix: str
    low: Any  # Decimal bounds, or date stamps
    high: Any
    number: Decimal | None = None
    system: str | None = None
    unit: str | None = None


@dataclass
class Clause:
    """One parameter of the query: a parameter, a modifier and OR-ed values."""

    name: str  # as the client wrote it
    param: SearchParam
    modifier: str = ""
    values: list[Any] = field(default_factory=list)
    # A chained or reverse-chained (_has) clause: its sub-query, answered before this one.
    chain: "Query | None" = None
    has_param: str = ""  # _has: the parameter of the sub-query's type that points back
    target: str = ""  # :Type modifier or the chain's type
    # What a chain or _has resolved to before matching: "Type/id" references, or ids.
    resolved: set[str] | None = None


@dataclass
class Query:
    """The clauses of one search on one resource type."""

    resource_type: str
    clauses: list[Clause] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)


def parse(resource_type: str, params: list[tuple[str, str]]) -> Query:
    """Parse the match parameters of a search; control parameters are left to the caller."""
    query = Query(resource_type)
    for name, raw in params:
        if name.partition(":")[0] in CONTROL:
            continue
        try:
            query.clauses.append(clause(resource_type, name, raw))
        except Unknown as unknown:
            query.unknown.append(unknown)
    return query


def clause(resource_type: str, name: str, raw: str) -> Clause:
    """Parse one `name=value` pair of a query string."""
    if name.startswith("_has:"):
        return _has(resource_type, name, raw)
    code, _, rest = name.partition(".")
    code, _, modifier = code.partition(":")
    param = registry().param(resource_type, code)
    if param is None:
        raise Unknown(name, f"Unknown search parameter '{code}' for {resource_type}")
    if rest:
        return _chain(resource_type, name, param, modifier, rest, raw)
    target = ""
    if param.type == "reference" and modifier and modifier not in MODIFIERS["reference"]:
        if modifier not in R4_RESOURCE_TYPES or (param.targets and modifier not in param.targets):
            raise BadRequest(f"'{modifier}' is not a target type of {code}", expression=name)
        target, modifier = modifier, ""
    elif modifier and modifier not in MODIFIERS[param.type]:
        raise BadRequest(
            f"Modifier ':{modifier}' is not supported on {param.type} parameter '{code}'; "
            f"supported: {', '.join(':' + m for m in MODIFIERS[param.type])}",
            expression=name,
        )
    if modifier == "of-type" and param.code != "identifier":
        raise BadRequest(":of-type applies to identifier only", expression=name)
    found = Clause(name, param, modifier, target=target)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise BadRequest(f"{name} takes true or false, not '{raw}'", expression=name)
        found.values = [raw == "true"]
        return found
    texts = _split(raw)
    if not texts:
        raise BadRequest(f"Search parameter '{name}' has no value", expression=name)
    try:
        found.values = [_value(found, text) for text in texts]
    except BadValue as error:
        raise BadRequest(f"{name}: {error}", expression=name) from None
    return found


def _split(raw: str) -> list[str]:
    """Split OR-ed values on commas not escaped with a backslash."""
    parts, current, escaped = [], "", False
    for char in raw:
        if escaped:
            current += char if char in ",$|\\" else "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current + ("\\" if escaped else ""))
    return [p for p in parts if p != ""]


def _value(found: Clause, text: str) -> Any:
    kind, modifier = found.param.type, found.modifier
    if kind == "token":
        if modifier == "text":
            return TokenValue(None, None, text=fold(text))
        if modifier == "of-type":
            parts = text.split("|")
            if len(parts) != 3 or not parts[2]:
                raise BadValue(f"'{text}' is not of the form type-system|type-code|value")
            return TokenValue(None, parts[2], of_type=(parts[0], parts[1]))
        if "|" not in text:
            return TokenValue(None, text)
        system, _, code = text.partition("|")
        return TokenValue(system, code or None)
    if kind == "string":
        return text if modifier == "exact" else fold(text)
    if kind in ORDERED:
        return _ordered(kind, text)
    if kind == "reference":
        if modifier == "identifier":
            system, bar, value = text.partition("|")
            return TokenValue(system if bar else None, value if bar else text)
        return text
    return text  # uri


def _ordered(kind: str, text: str) -> Ordered:
    prefix = text[:2] if text[:2] in PREFIXES else "eq"
    body = text[2:] if text[:2] in PREFIXES else text
    if kind == "date":
        span: DateRange = date_range(body)
        return Ordered(prefix, span.low, span.high)
    number_text, system, unit = body, None, None
    if kind == "quantity" and "|" in body:
        pieces = body.split("|")
        if len(pieces) != 3:
            raise BadValue(f"'{text}' is not of the form [prefix]value|system|code")
        number_text, system, unit = pieces[0], pieces[1] or None, pieces[2] or None
    number = decimal(number_text)
    low, high = precision_range(number)
    return Ordered(prefix, low, high, number, system, unit)


def _chain(
    resource_type: str, name: str, param: SearchParam, modifier: str, rest: str, raw: str
) -> Clause:
    """Parse `subject:Patient.name=x`: a reference parameter answered by a sub-query."""
    if param.type != "reference":
        message = f"'{param.code}' is not a reference and cannot be chained"
        raise BadRequest(message, expression=name)
    targets = [modifier] if modifier else list(param.targets)
    if modifier and (modifier not in R4_RESOURCE_TYPES or modifier not in param.targets):
        raise BadRequest(f"'{modifier}' is not a target type of {param.code}", expression=name)
    if len(targets) != 1:
        # Several target types: the chained parameter must mean the same on each; try them all.
        known = [t for t in targets if registry().param(t, rest.split(".")[0].split(":")[0])]
        if not known:
            raise Unknown(name, f"No target type of '{param.code}' has a parameter '{rest}'")
        targets = known
    subqueries = [Query(t, [clause(t, rest, raw)]) for t in targets]
    found = Clause(name, param, target=targets[0] if len(targets) == 1 else "")
    found.chain = subqueries[0]
    found.values = subqueries  # each sub-query is one OR-ed alternative
    return found


def _has(resource_type: str, name: str, raw: str) -> Clause:
    """Parse `_has:Observation:patient:code=1234`: resources some Observation points to."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise BadRequest(
            f"'{name}' is not of the form _has:Type:reference-parameter:parameter", expression=name
        )
    _, other_type, back, rest = parts
    if other_type not in R4_RESOURCE_TYPES:
        raise BadRequest(f"'{other_type}' is not a resource type", expression=name)
    back_param = registry().param(other_type, back)
    if back_param is None or back_param.type != "reference":
        raise Unknown(name, f"'{back}' is not a reference parameter of {other_type}")
    sub = Query(other_type, [clause(other_type, rest, raw)])
    found = Clause(name, COMMON["_id"], chain=sub, has_param=back)
    found.values = [sub]
    return found
