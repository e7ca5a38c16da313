"""One walk over a resource's JSON: shape checks the models leave to us, and its references."""

from dataclasses import dataclass, field
from typing import Any

from hub.fhir.outcome import BadRequest


@dataclass
class References:
    """Every `reference` of a resource, as (the object holding it, the value as received)."""

    found: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    @property
    def to_bundle(self) -> bool:
        """Tell whether any reference points at a Bundle entry by urn:uuid."""
        return any(value.startswith("urn:uuid:") for _, value in self.found)

    def resolve(self, resolved: dict[str, str], base: str) -> str | None:
        """Point references at the stored ids of the entries they name, and make references
        under this hub's own base relative, as the hub searches them; return an unresolved
        urn:uuid if one is left. Works from the values as received, so it may run again."""
        unresolved = None
        local = base.rstrip("/") + "/"
        for holder, value in self.found:
            if value.startswith(local):
                value = value[len(local) :]
            holder["reference"] = resolved.get(value, value)
            if unresolved is None and holder["reference"].startswith("urn:uuid:"):
                unresolved = value
        return unresolved


def _null_in_list(node: dict[str, Any], key: str, items: list[Any]) -> int | None:
    """Return the index of a null that no `_key` extension explains, or None.

    Only primitive arrays may hold nulls, each lined up with an extension in the `_key` array.
    """
    siblings = node.get(f"_{key}") if not key.startswith("_") else node.get(key[1:])
    for i, item in enumerate(items):
        if item is None and not (
            isinstance(siblings, list) and i < len(siblings) and siblings[i] is not None
        ):
            return i
    return None


def walk(resource: dict[str, Any], path: str, max_depth: int) -> References:
    """Refuse JSON nulls and nesting deeper than `max_depth`; collect the references."""
    refs = References()
    stack: list[tuple[Any, int, str]] = [(resource, 0, path)]
    while stack:
        node, depth, where = stack.pop()
        if depth > max_depth:
            message = f"The resource is nested deeper than {max_depth} levels"
            raise BadRequest(message, expression=path)
        if isinstance(node, list):
            stack.extend(
                (v, depth + 1, f"{where}[{i}]")
                for i, v in enumerate(node)
                if isinstance(v, (dict, list))
            )
            continue
        for k, v in node.items():
            if v is None:
                raise BadRequest(
                    f"Element '{k}' is null: FHIR JSON leaves absent elements out",
                    expression=f"{where}.{k}",
                )
            if isinstance(v, dict):
                stack.append((v, depth + 1, f"{where}.{k}"))
            elif isinstance(v, list):
                if None in v:
                    i = _null_in_list(node, k, v)
                    if i is not None:
                        raise BadRequest(
                            f"{k}[{i}] is null: only primitive arrays may hold nulls, "
                            f"each explained by an extension in _{k}",
                            expression=f"{where}.{k}[{i}]",
                        )
                stack.append((v, depth + 1, f"{where}.{k}"))
            elif k == "reference" and isinstance(v, str):
                refs.found.append((node, v))
    return refs
