"""Check a resource against the FHIR R4 base rules the pydantic models leave out: the codes of
required bindings on `code` elements, and the JSON type of every primitive element.

The rules are generated from the R4 definitions by `generate.py` into `r4-rules.json`.
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

RULES = Path(__file__).with_name("r4-rules.json")
# How many allowed codes a message lists before it points at the ValueSet instead.
CODES_SHOWN = 10
INT32 = (-(2**31), 2**31 - 1)

# Kinds of rule: a primitive JSON kind, a code from a ValueSet, a datatype, a resource.
STRING, CODE, BOOLEAN, INTEGER, DECIMAL, COMPLEX, RESOURCE = range(7)


@dataclass(frozen=True, slots=True)
class Codes:
    """The codes of a ValueSet bound to code elements, and how to tell an integrator of them."""

    name: str
    codes: frozenset[str]
    hint: str


@dataclass(frozen=True, slots=True)
class Integer:
    """One of FHIR's integer types, with its range."""

    name: str
    lowest: int
    highest: int = INT32[1]


Rule = tuple[int, Any]
Table = dict[str, Rule]
Problems = list[tuple[str, str]]
# Where an element is, built only when there is a problem to report: the resource type, or
# (parent, JSON name, index in the array or None).
Where = str | tuple["Where", str, int | None]

_PRIMITIVES: dict[str, Rule] = {
    "string": (STRING, None),
    "boolean": (BOOLEAN, None),
    "decimal": (DECIMAL, None),
    "integer": (INTEGER, Integer("integer", INT32[0])),
    "positiveInt": (INTEGER, Integer("positiveInt", 1)),
    "unsignedInt": (INTEGER, Integer("unsignedInt", 0)),
}
_NUMBER_TYPES = (int, float, Decimal)


def base_problems(resource: dict[str, Any]) -> Problems:
    """Return (element path, message) for each element of a resource that breaks a base rule."""
    problems: Problems = []
    _walk_resource(resource, str(resource.get("resourceType")), problems)
    return problems


@cache
def resource_tables() -> dict[str, Table]:
    """Return the rules of each resource type, by type, read once from r4-rules.json."""
    data = json.loads(RULES.read_bytes())
    value_sets = {key: _codes(value_set) for key, value_set in data["valueSets"].items()}
    tables: dict[str, Table] = {name: {} for name in data["tables"]}
    for name, elements in data["tables"].items():
        for element, spec in elements.items():
            tables[name][element] = _rule(spec, tables, value_sets)
    return {name: tables[name] for name in data["resources"]}


def _codes(value_set: dict[str, Any]) -> Codes:
    """Return a ValueSet's codes with the list a message offers."""
    codes = value_set["codes"]
    hint = ", ".join(codes[:CODES_SHOWN])
    if len(codes) > CODES_SHOWN:
        hint += f", ... ({len(codes)} codes: {value_set['url']})"
    return Codes(value_set["name"], frozenset(codes), hint)


def _rule(spec: str, tables: dict[str, Table], value_sets: dict[str, Codes]) -> Rule:
    """Return the rule an r4-rules.json element spec stands for."""
    if spec.startswith("="):
        return CODE, value_sets[spec[1:]]
    if spec == "Resource":
        return RESOURCE, None
    return _PRIMITIVES.get(spec) or (COMPLEX, tables[spec])


def _walk_resource(resource: dict[str, Any], path: Where, problems: Problems) -> None:
    """Check a resource by the table of its own type; one of an unknown type is left alone."""
    resource_type = resource.get("resourceType")
    table = resource_tables().get(resource_type) if isinstance(resource_type, str) else None
    if table is not None:
        _walk(resource, table, path, problems)


def _walk(node: dict[str, Any], table: Table, path: Where, problems: Problems) -> None:
    """Check each element of a JSON object the table knows; pydantic reports the others."""
    # Runs on every write: the common cases (a string, an object) are decided inline.
    for key, value in node.items():
        rule = table.get(key)
        if rule is None:
            continue
        kind = rule[0]
        if type(value) is list:
            for index, item in enumerate(value):
                if kind == COMPLEX and type(item) is dict:
                    _walk(item, rule[1], (path, key, index), problems)
                elif not (kind == STRING and type(item) is str):
                    _check(item, rule, (path, key, index), problems)
        elif kind == STRING:
            if type(value) is not str:
                _check(value, rule, (path, key, None), problems)
        elif kind == COMPLEX:
            if type(value) is dict:
                _walk(value, rule[1], (path, key, None), problems)
        else:
            _check(value, rule, (path, key, None), problems)


def _check(value: Any, rule: Rule, where: Where, problems: Problems) -> None:
    """Check one value of an element (one item of an array) against the element's rule."""
    kind, arg = rule
    if value is None or kind == COMPLEX:  # a null stands beside a `_element`; pydantic
        return  # reports a complex element that is not an object
    if kind == STRING:
        if type(value) is str:
            return
        message = f"Expected a JSON string here, not {_shown(value)}"
    elif kind == CODE:
        if type(value) is str and value in arg.codes:
            return
        if type(value) is str:
            message = f"'{value}' is not a code of {arg.name}: use one of {arg.hint}"
        else:
            message = f"Expected a code of {arg.name} (a JSON string) here, not {_shown(value)}"
    elif kind == BOOLEAN:
        if type(value) is bool:
            return
        message = f"Expected true or false here, not {_shown(value)}"
    elif kind == INTEGER:
        if type(value) is int and arg.lowest <= value <= arg.highest:
            return
        message = _integer_message(value, arg)
    elif kind == DECIMAL:
        if type(value) in _NUMBER_TYPES:
            return
        message = f"Expected a decimal (a JSON number) here, not {_shown(value)}"
    else:
        if type(value) is dict:
            _walk_resource(value, where, problems)
        return
    problems.append((_name(where), message))


def _integer_message(value: Any, integer: Integer) -> str:
    """Say what an integer element expects instead of the value it has."""
    if type(value) is not int:
        return f"Expected an integer (a JSON number without a fraction) here, not {_shown(value)}"
    if integer.lowest == INT32[0]:
        return f"Expected an integer from {INT32[0]} to {INT32[1]} here, not {value}"
    return f"Expected an integer of {integer.lowest} or more ({integer.name}) here, not {value}"


def _name(where: Where) -> str:
    """Return an element's path as text: `Patient.name[0].use`."""
    if isinstance(where, str):
        return where
    parent, key, index = where
    name = f"{_name(parent)}.{key}"
    return name if index is None else f"{name}[{index}]"


def _shown(value: Any) -> str:
    """Describe a JSON value for a message, as its kind and its text."""
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _NUMBER_TYPES):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "an array"
    return repr(value)
