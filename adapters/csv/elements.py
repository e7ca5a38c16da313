"""Element paths as the mapping file writes them (`name[0].given`, `valueQuantity.value`):
setting a value at one, and dropping what was never filled."""

import re
from typing import Any

from adapters.base import Resource

_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")


def steps(path: str) -> list[tuple[str, int | None]]:
    """Return the steps of a path: each element name and, in a list, the item's index."""
    found = []
    for part in path.split("."):
        match = _STEP.match(part)
        if not match:
            raise ValueError(f"'{path}' is not an element path like name[0].text")
        found.append((match.group(1), int(match.group(2)) if match.group(2) else None))
    return found


def put(resource: Resource, path: str, value: Any) -> None:
    """Set the element at `path`, creating the objects and list items on the way."""
    node: Any = resource
    route = steps(path)
    for i, (name, index) in enumerate(route):
        last = i == len(route) - 1
        if index is None:
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        while len(items) <= index:
            items.append({})
        if last:
            items[index] = value
        else:
            node = items[index]


def pruned(node: Any) -> Any:
    """Return a resource without the empty objects and lists that unfilled columns leave."""
    if isinstance(node, dict):
        kept = {k: pruned(v) for k, v in node.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [], "")}
    if isinstance(node, list):
        return [v for v in (pruned(v) for v in node) if v not in ({}, [], "")]
    return node
