"""Turn a Grant into a MongoDB filter: pure, it only builds the dict.

The filter assumes these fields on every stored resource:
- `resourceType`: the FHIR resource type, as received;
- the facility field (default `_hub.fac`): the national code of the facility holding the record;
- the labels field (default `_hub.labels`): the resource's meta.security labels as
  "system|code" strings (`security_labels` makes them), written with the resource. A record
  without labels may lack the field.
It uses only equality, `$in`, `$nin`, `$and` and `$or`.
"""

from collections.abc import Mapping
from typing import Any

from consent.grant import FALSE, AllOf, AnyOf, Condition, Grant, LabelIn, TypeIn
from consent.model import Label


def label_key(label: Label) -> str:
    """Return the stored form of a security label: "system|code"."""
    system, code = label
    return f"{system}|{code}"


def label_of(key: str) -> Label:
    """Read a label back from its stored form (`label_key`'s inverse)."""
    system, _, code = key.rpartition("|")
    return system, code


def security_labels(resource: Mapping[str, Any]) -> list[str]:
    """Return a resource's meta.security labels in stored form, for the labels field."""
    meta = resource.get("meta") or {}
    labels = {
        label_key((str(c.get("system", "")), str(c.get("code", ""))))
        for c in meta.get("security") or ()
    }
    return sorted(labels)


def grant_filter(
    grant: Grant, facility_field: str = "_hub.fac", labels_field: str = "_hub.labels"
) -> dict[str, Any]:
    """Return the MongoDB filter selecting exactly the records the grant allows.

    Combine it with a query by `{"$and": [query, filter]}`; an empty filter allows everything.
    """
    if grant.everything:
        return {}
    own = {facility_field: grant.facility}
    if grant.condition == FALSE:
        return own
    others = grant.condition.terms if isinstance(grant.condition, AnyOf) else (grant.condition,)
    return {"$or": [own, *(condition_filter(c, labels_field) for c in others)]}


def condition_filter(condition: Condition, labels_field: str = "_hub.labels") -> dict[str, Any]:
    """Return the MongoDB filter of one condition on the record's type and labels."""
    match condition:
        case TypeIn(types, negated):
            return {"resourceType": _values(sorted(types), negated)}
        case LabelIn(labels, negated):
            return {labels_field: _values(sorted(map(label_key, labels)), negated)}
        case AllOf(terms):
            return {"$and": [condition_filter(t, labels_field) for t in terms]} if terms else {}
        case AnyOf(terms):
            if not terms:
                return {"resourceType": {"$in": []}}
            return {"$or": [condition_filter(t, labels_field) for t in terms]}
    raise TypeError(condition)


def _values(values: list[str], negated: bool) -> Any:
    if negated:
        return {"$nin": values}
    return values[0] if len(values) == 1 else {"$in": values}
