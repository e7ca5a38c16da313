"""Facility attribution of writes: a facility system writes only as itself.

A resource claims a facility by its meta.tag under the facility system, its meta.source
(`<facility system>/<code>`, as the adapters mark what they send) or, for an Organization,
its identifier under the facility system; and so does every resource it carries (contained
resources, a Bundle's entries, a Parameters' resources), at any depth. A scoped writer
(`Scope.facility`) may claim only its own facility; one claim of another refuses the whole
request.
"""

from collections.abc import Iterator
from typing import Any

from hub.auth.deps import require_scope
from hub.auth.roles import Role
from hub.fhir.entry import Entry
from hub.fhir.outcome import Forbidden
from hub.fhir.result import Context

# The interaction letter (SMART v2) each write method needs.
_LETTERS = {"POST": "c", "PUT": "u", "DELETE": "d"}


def claims(resource: dict[str, Any], system: str) -> Iterator[tuple[str, str]]:
    """Yield (facility code, element) for each facility a resource, or any resource nested in
    it, says it belongs to, by the national facility identifier `system`."""
    yield from _claims_within(resource, system, "")


def _claims_within(node: Any, system: str, at: str) -> Iterator[tuple[str, str]]:
    """Yield the claims of the resources in the element at path `at` ("" for the top)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _claims_within(item, system, f"{at}[{i}]")
    elif isinstance(node, dict):
        prefix = f"{at}." if at else ""
        if isinstance(node.get("resourceType"), str):
            yield from _own_claims(node, system, prefix)
        for name, value in node.items():
            if isinstance(value, dict | list):
                yield from _claims_within(value, system, prefix + name)


def _own_claims(resource: dict[str, Any], system: str, path: str) -> Iterator[tuple[str, str]]:
    """Yield the claims a resource makes itself (not those of resources it holds); `path` is
    the resource's own, ending with a dot, or "" for the top."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for where, tag in _each(meta.get("tag"), f"{path}meta.tag"):
            if isinstance(tag, dict) and tag.get("system") == system:
                yield str(tag.get("code")), where
        source = meta.get("source")
        if isinstance(source, str) and source.startswith(system + "/"):
            yield source.removeprefix(system + "/"), f"{path}meta.source"
    if resource.get("resourceType") == "Organization":
        for where, identifier in _each(resource.get("identifier"), f"{path}identifier"):
            if isinstance(identifier, dict) and identifier.get("system") == system:
                yield str(identifier.get("value")), where


def _each(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (path, item) of a repeating element, also when a client sent one item bare."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield f"{path}[{i}]", item
    elif value is not None:
        yield path, value


def check_scopes(ctx: Context, entries: list[Entry]) -> None:
    """Refuse (403) if the caller's scopes lack one checked entry's write interaction."""
    for entry in entries:
        letter = _LETTERS.get(entry.method)
        if letter is None:
            continue  # a GET entry is checked by the read or search it runs
        try:
            require_scope(ctx.caller, letter, entry.target.resource_type)
        except Forbidden as error:
            raise error.locate(entry.path) from None


def check_claims(ctx: Context, entries: list[Entry]) -> None:
    """Refuse (403) if one entry's resource claims a facility other than a scoped writer's; a
    person writes as themselves and claims no facility."""
    own = ctx.scope.facility
    person = ctx.caller.role == Role.PATIENT
    if own is None and not person:
        return
    for entry in entries:
        if entry.method not in ("POST", "PUT") or not isinstance(entry.resource, dict):
            continue
        for code, element in claims(entry.resource, ctx.settings.facility_system):
            if code != own:
                writer = (
                    "a person writes as themselves"
                    if person
                    else (f"this client writes for facility {own} only")
                )
                raise Forbidden(
                    f"{entry.where('resource.' + element)} claims facility {code}; "
                    f"{writer}, so nothing was written"
                ).locate(entry.path)


def taken_message(resource_key: str, facility: str) -> str:
    """Return why a scoped writer may not write a resource under an id held elsewhere."""
    return (
        f"{resource_key} is not a record of facility {facility}: a facility writes only its "
        "own records; create new ones with POST, or under an id of your own"
    )
