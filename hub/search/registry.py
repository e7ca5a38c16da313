"""The search parameters the hub knows, per resource type, from `parameters.json`.

The JSON holds the R4 SearchParameter definitions as data, with their FHIRPath expressions
rewritten in a small path language: `a.b` walks elements (lists transparently), `value[x]` is a
choice element, `telecom[system=phone]` keeps the list items whose `system` is `phone`.
https://hl7.org/fhir/R4/searchparameter-registry.html
"""

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FILE = Path(__file__).with_name("parameters.json")
_STEP = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9]*)"
    r"(?:\[(?:(?P<choice>x)|(?P<key>\w+)=(?P<value>[^\]]+))\])?"
)

# The types each search type may be used with; they select the comparison and the modifiers.
TYPES = ("number", "date", "string", "token", "reference", "quantity", "uri")
MODIFIERS = {
    "token": ("missing", "not", "text", "of-type"),
    "string": ("missing", "exact", "contains"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "reference": ("missing", "identifier"),  # and :Type, any resource type
    "uri": ("missing",),
}
# Prefixes of ordered types.
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
ORDERED = ("number", "date", "quantity")


@dataclass(frozen=True)
class Step:
    """One element step of a path."""

    name: str
    choice: bool = False
    where: tuple[str, str] | None = None


@dataclass(frozen=True)
class SearchParam:
    """One search parameter of one resource type."""

    code: str
    type: str
    paths: tuple[tuple[Step, ...], ...]
    targets: tuple[str, ...] = ()
    # Set on the special parameters the engine answers from its own fields.
    special: str = ""
    description: str = ""
    note: str = ""

    @property
    def definition(self) -> str:
        return f"http://hl7.org/fhir/SearchParameter/{self.code}"


@dataclass
class Registry:
    """Every search parameter by resource type, and the Patient compartment."""

    by_type: dict[str, dict[str, SearchParam]] = field(default_factory=dict)
    compartment: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def params(self, resource_type: str) -> dict[str, SearchParam]:
        """Return the parameters of a type, the common ones included."""
        return self.by_type.get(resource_type, COMMON)

    def param(self, resource_type: str, code: str) -> SearchParam | None:
        return self.params(resource_type).get(code)


def parse_path(text: str) -> tuple[Step, ...]:
    """Parse one path of the registry's path language."""
    steps = []
    for part in text.split("."):
        match = _STEP.fullmatch(part)
        if not match:
            raise ValueError(f"bad path step '{part}' in '{text}'")
        key, value = match["key"], match["value"]
        steps.append(Step(match["name"], bool(match["choice"]), (key, value) if key else None))
    return tuple(steps)


def _common() -> dict[str, SearchParam]:
    """Return the parameters every resource type has."""
    meta = {
        "_tag": ("token", "meta.tag"),
        "_security": ("token", "meta.security"),
        "_profile": ("uri", "meta.profile"),
        "_source": ("uri", "meta.source"),
    }
    common = {
        code: SearchParam(code, kind, (parse_path(path),)) for code, (kind, path) in meta.items()
    }
    common["_id"] = SearchParam("_id", "token", (parse_path("id"),), special="id")
    common["_lastUpdated"] = SearchParam(
        "_lastUpdated", "date", (parse_path("meta.lastUpdated"),), special="lastUpdated"
    )
    return common


COMMON = _common()


def _param(code: str, raw: dict[str, Any]) -> SearchParam:
    return SearchParam(
        code=code,
        type=raw["type"],
        paths=tuple(parse_path(p) for p in raw["paths"]),
        targets=tuple(raw.get("targets", ())),
        description=raw.get("description", ""),
        note=raw.get("note", ""),
    )


@functools.cache
def registry() -> Registry:
    """Load the registry once."""
    raw = json.loads(_FILE.read_text(encoding="utf-8"))
    found = Registry()
    for resource_type, params in raw["types"].items():
        found.by_type[resource_type] = COMMON | {
            code: _param(code, p) for code, p in params.items() if p["type"] in TYPES
        }
    found.compartment = {t: tuple(codes) for t, codes in raw["compartments"]["Patient"].items()}
    return found
