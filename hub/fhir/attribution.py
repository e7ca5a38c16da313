"""Facility attribution of writes: a facility system writes only as itself.

A resource claims a facility by its meta.tag under the facility system, its meta.source
(`<facility system>/<code>`, as the adapters mark what they send) or, for an Organization,
its identifier under the facility system. A scoped writer (`Scope.facility`) may claim only
its own facility; one entry claiming another refuses the whole request.
"""

from collections.abc import Iterator
from typing import Any

from hub.auth.deps import require_scope
from hub.fhir.entry import Entry
from hub.fhir.outcome import Forbidden
from hub.fhir.result import Context

# The interaction letter (SMART v2) each write method needs.
_LETTERS = {"POST": "c", "PUT": "u", "DELETE": "d"}


def claims(resource: dict[str, Any], system: str) -> Iterator[tuple[str, str]]:
    """Yield (facility code, element) for each facility a resource says it belongs to, by
    the national facility identifier `system`."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for i, tag in enumerate(meta.get("tag") or ()):
            if isinstance(tag, dict) and tag.get("system") == system:
                yield str(tag.get("code")), f"meta.tag[{i}]"
        source = meta.get("source")
        if isinstance(source, str) and source.startswith(system + "/"):
            yield source.removeprefix(system + "/"), "meta.source"
    if resource.get("resourceType") == "Organization":
        for i, identifier in enumerate(resource.get("identifier") or ()):
            if isinstance(identifier, dict) and identifier.get("system") == system:
                yield str(identifier.get("value")), f"identifier[{i}]"


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
    """Refuse (403) if one entry's resource claims a facility other than a scoped writer's."""
    own = ctx.scope.facility
    if own is None:
        return
    for entry in entries:
        if entry.method not in ("POST", "PUT") or not isinstance(entry.resource, dict):
            continue
        for code, element in claims(entry.resource, ctx.settings.facility_system):
            if code != own:
                raise Forbidden(
                    f"{entry.where('resource.' + element)} claims facility {code}; "
                    f"this client writes for facility {own} only, so nothing was written"
                ).locate(entry.path)


def taken_message(resource_key: str, facility: str) -> str:
    """Return why a scoped writer may not write a resource under an id held elsewhere."""
    return (
        f"{resource_key} is not a record of facility {facility}: a facility writes only its "
        "own records; create new ones with POST, or under an id of your own"
    )
