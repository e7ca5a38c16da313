"""`_summary` and `_elements`: returning part of each resource, marked SUBSETTED.
https://hl7.org/fhir/R4/search.html#summary  https://hl7.org/fhir/R4/search.html#elements
"""

import functools
from typing import Any

from hub.fhir.resource_types import model_class

SUMMARIES = ("true", "false", "text", "data", "count")
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = ("resourceType", "id", "meta")


@functools.cache
def _elements_of(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """Return a type's summary elements and its mandatory elements (JSON names)."""
    model = model_class(resource_type)
    if model is None:
        return frozenset(), frozenset()
    summary, mandatory = set(), set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        alias = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(alias)
        if extra.get("element_required") or info.is_required():
            mandatory.add(alias)
    return frozenset(summary), frozenset(mandatory)


def _base(name: str) -> str:
    """Return the element a JSON key belongs to: `_birthDate` to `birthDate`."""
    return name[1:] if name.startswith("_") else name


def _choice_of(name: str, wanted: set[str]) -> bool:
    """Tell whether a key like `valueQuantity` is the choice element `value` asked for."""
    return any(name.startswith(w) and name[len(w) : len(w) + 1].isupper() for w in wanted)


def shape(resource: dict[str, Any], summary: str, elements: list[str]) -> dict[str, Any]:
    """Return the part of a resource that `_summary` or `_elements` asks for."""
    if summary in ("false", "count") and not elements:
        return resource
    summary_names, mandatory = _elements_of(resource["resourceType"])
    if elements:
        wanted = set(elements) | mandatory
        kept = {
            k: v
            for k, v in resource.items()
            if k in _ALWAYS or _base(k) in wanted or _choice_of(_base(k), wanted)
        }
    elif summary == "true":
        kept = {k: v for k, v in resource.items() if k in _ALWAYS or _base(k) in summary_names}
    elif summary == "text":
        keep = {*_ALWAYS, "text"}
        kept = {k: v for k, v in resource.items() if k in keep or _base(k) in mandatory}
    else:  # data
        kept = {k: v for k, v in resource.items() if k != "text"}
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    kept["meta"] = meta
    return kept
