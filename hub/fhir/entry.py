"""A request to write or read one resource: a single interaction, or one entry of a Bundle.

Parsing and checking it needs no database; `hub.fhir.writes` then carries it out.
"""

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from hub.fhir.outcome import BadRequest, Issue
from hub.fhir.references import References, walk
from hub.fhir.validate import storable_type, validate_resource

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]+")
_ETAG = re.compile(r'^(W/)?"?(\d+)"?$')


@dataclass
class Target:
    """What a request URL points at: a type, maybe an id, maybe search criteria."""

    resource_type: str
    id: str | None = None
    query: str | None = None
    version: str | None = None
    operation: str | None = None
    history: bool = False  # Type/_history or Type/id/_history


@dataclass
class Entry:
    """One write (or read) request: a single interaction, or one entry of a Bundle."""

    method: str
    url: str
    path: str  # where errors point, e.g. "Bundle.entry[3]"; "" for a single interaction
    resource: dict[str, Any] | None = None
    full_url: str | None = None
    if_none_exist: str | None = None
    if_match: str | None = None
    new_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    target: Target = field(init=False)
    references: References = field(default_factory=References)
    # Set by the national-profile check (hub.fhir.profiling): what the stored version keeps
    # of its findings, and the findings for the response.
    quality: dict[str, Any] | None = None
    findings: list[Issue] = field(default_factory=list)

    def where(self, element: str) -> str:
        """Return the path of one of this entry's elements, e.g. Bundle.entry[3].resource.id."""
        if self.path:
            return f"{self.path}.{element}"
        if element.startswith("resource"):  # a single interaction: the resource is the root
            return self.url.split("?")[0].split("/")[0] + element.removeprefix("resource")
        return element


def parse_url(url: str, where: str) -> Target:
    """Parse a relative request URL: Type, Type/id, Type/id/_history/vid, Type?query."""
    path, _, query = url.partition("?")
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts or not _TYPE.fullmatch(parts[0]):
        raise BadRequest(f"Cannot understand the request URL '{url}'", expression=where)
    target = Target(parts[0], query=query or None)
    rest = parts[1:]
    if rest and rest[0].startswith("$"):
        target.operation = rest[0]
        return target
    if rest == ["_history"]:
        target.history = True
        return target
    if rest:
        if not _ID.fullmatch(rest[0]):
            raise BadRequest(f"'{rest[0]}' is not a valid resource id", expression=where)
        target.id = rest[0]
        rest = rest[1:]
    if len(rest) == 2 and rest[0] == "_history":
        target.version = rest[1]
    elif rest == ["_history"]:
        target.history = True
    elif rest:
        raise BadRequest(f"Cannot understand the request URL '{url}'", expression=where)
    return target


def parse_etag(value: str, where: str) -> int:
    """Return the version number in an If-Match value such as W/"3"."""
    match = _ETAG.match(value.strip())
    if not match:
        raise BadRequest(f"If-Match '{value}' is not a version ETag like W/\"1\"", expression=where)
    return int(match.group(2))


def check(entry: Entry, max_depth: int) -> None:
    """Validate an entry's URL and resource before any database work."""
    entry.target = target = parse_url(entry.url, entry.where("request.url"))
    storable_type(target.resource_type)
    if entry.method in ("POST", "PUT"):
        if entry.resource is None:
            raise BadRequest(f"{entry.method} needs a resource", expression=entry.path or None)
        where = entry.where("resource") if entry.path else None
        rtype = validate_resource(entry.resource, where)
        entry.references = walk(entry.resource, where or target.resource_type, max_depth)
        if rtype != target.resource_type:
            raise BadRequest(
                f"The resource is a {rtype} but the URL is for {target.resource_type}",
                expression=entry.where("resource.resourceType"),
            )
    if entry.method == "POST" and (target.id or target.query):
        raise BadRequest(
            "POST goes to the type, e.g. 'Patient'", expression=entry.where("request.url")
        )
    if entry.method == "PUT":
        body_id = entry.resource.get("id") if entry.resource else None
        if target.id and body_id != target.id:
            raise BadRequest(
                f"The resource's id ({body_id or 'missing'}) must equal "
                f"the id in the URL ({target.id})",
                expression=entry.where("resource.id"),
            )
        if not target.id and not target.query:
            raise BadRequest(
                "PUT needs an id or search criteria in the URL",
                expression=entry.where("request.url"),
            )
    if entry.method == "DELETE" and not (target.id or target.query):
        raise BadRequest(
            "DELETE needs an id or search criteria", expression=entry.where("request.url")
        )
    if entry.method in ("PUT", "DELETE", "POST") and (target.version or target.history):
        raise BadRequest(
            "Versions cannot be written to directly", expression=entry.where("request.url")
        )
