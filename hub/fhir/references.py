"""Walks over resource JSON: shape checks, and references between the entries of a Bundle."""

from typing import Any

from hub.fhir.outcome import BadRequest


def check_tree(resource: Any, path: str, max_depth: int) -> bool:
    """Refuse JSON nulls as element values and nesting deeper than `max_depth`.

    Return whether the resource holds a urn:uuid reference, which a Bundle must resolve.
    """
    uuid_refs = False
    stack: list[tuple[Any, int]] = [(resource, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise BadRequest(
                f"The resource is nested deeper than {max_depth} levels", expression=path
            )
        if isinstance(node, dict):
            for k, v in node.items():
                if v is None:
                    raise BadRequest(
                        f"Element '{k}' is null: FHIR JSON leaves absent elements out",
                        expression=path,
                    )
                if isinstance(v, (dict, list)):
                    stack.append((v, depth + 1))
                elif k == "reference" and isinstance(v, str) and v.startswith("urn:uuid:"):
                    uuid_refs = True
        else:
            # Arrays may hold nulls: primitive arrays line values up with their `_x` siblings.
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return uuid_refs


def rewrite_references(value: Any, resolved: dict[str, str]) -> Any:
    """Return a copy of a resource with references to bundle fullUrls pointing at stored ids."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v in resolved:
                out[k] = resolved[v]
            else:
                out[k] = rewrite_references(v, resolved) if isinstance(v, (dict, list)) else v
        return out
    if isinstance(value, list):
        return [
            rewrite_references(v, resolved) if isinstance(v, (dict, list)) else v for v in value
        ]
    return value


def unresolved_uuid(value: Any) -> str | None:
    """Return the first urn:uuid reference left in a resource, if any."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            return ref
        items = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return None
    for v in items:
        if isinstance(v, (dict, list)):
            found = unresolved_uuid(v)
            if found:
                return found
    return None
