"""A group of resources an EMR sent together (one Bundle, or N lines of NDJSON) as one
transaction Bundle: each resource attributed to the facility, written conditionally, and its
references to the others pointed at their entries."""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.base import Bundle, BundleBuilder, Facility, Rejection, Resource, identifier_query
from adapters.fhir.attribution import attribute

FHIR_ID_KIND = "fhir-id"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ehrhub.invalid/adapters/fhir")
# A literal reference `Type/id` (optionally `.../_history/n`), relative or absolute.
_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(frozen=True)
class Item:
    """One resource as sent: where it was (file and entry or line), and its fullUrl if any."""

    where: str
    resource: Resource
    full_url: str | None = None


def hub_id(facility: Facility, resource_type: str, original_id: str) -> str:
    """Return the id the hub stores a resource under: stable per facility and original id, so
    that a reference `Type/id` from another group (NDJSON) can be pointed at it."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{facility.code}|{resource_type}/{original_id}"))


def own_identifier(resource: Resource) -> Resource | None:
    """Return the resource's first identifier with both a system and a value."""
    found = resource.get("identifier")
    items = found if isinstance(found, list) else [found] if isinstance(found, dict) else []
    for item in items:
        if isinstance(item, dict) and item.get("system") and item.get("value"):
            return item
    return None


def _condition(item: Item, facility: Facility) -> str:
    """Return the search criteria the resource is written on: an identifier
    `facility.system("fhir-id") | its original id`, added to it; without an id, its own first
    identifier. The original id comes first because it is scoped to the facility: an
    identifier another facility also sends (a citizen ID, a shared Organization) would
    otherwise make one facility's resource overwrite, or clash with, another's."""
    resource = item.resource
    original = resource.get("id")
    ids = resource.get("identifier")
    if original and not isinstance(ids, dict):  # a 0..1 identifier has no room for a second
        system = facility.system(FHIR_ID_KIND)
        keyed = {"system": system, "value": original}
        listed = ids if isinstance(ids, list) else []
        resource["identifier"] = listed + ([] if keyed in listed else [keyed])
        return identifier_query(system, original)
    own = own_identifier(resource)
    if own:
        return identifier_query(own["system"], own["value"])
    raise ValueError("has neither an id nor an identifier with system and value")


def _references(node: Any) -> Iterator[dict[str, Any]]:
    """Yield every object holding a string `reference`, contained resources' included."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _aliases(item: Item) -> list[str]:
    """Return the ways another resource of the group may refer to this one."""
    rtype, rid = item.resource.get("resourceType", ""), item.resource.get("id")
    found = [f"{rtype}/{rid}"] if rid else []
    return found + ([item.full_url] if item.full_url else [])


def _rewrite(reference: str, urls: dict[str, str], facility: Facility) -> str:
    """Return a reference pointed at a group entry, or at the hub id of a resource the same
    facility sent in another group; other references (external URLs, `#contained`) as sent."""
    if reference in urls or reference.startswith("#"):
        return urls.get(reference, reference)
    literal = _LITERAL.search(reference)
    if literal and literal.group(0).lstrip("/") in urls:
        return urls[literal.group(0).lstrip("/")]
    if literal and "://" not in reference:
        return f"{literal.group(1)}/{hub_id(facility, literal.group(1), literal.group(2))}"
    if reference.startswith("urn:"):
        raise ValueError(f"refers to {reference}, which is not in the same Bundle")
    return reference


def transaction(items: list[Item], facility: Facility, source: str) -> Bundle | Rejection:
    """Return the transaction Bundle writing a group, or a Rejection naming the resource at
    fault."""
    builder = BundleBuilder(facility)
    organization = builder.organization()
    urls: dict[str, str] = {}
    for item in items:
        resource = item.resource
        if not isinstance(resource.get("resourceType"), str):
            return Rejection(item.where, "the resource has no resourceType")
        try:
            condition = _condition(item, facility)
        except ValueError as e:
            return Rejection(item.where, f"{resource['resourceType']} {e}")
        # The entry holds the resource itself: finished below, once every fullUrl is known.
        url = builder.put(resource, condition)
        urls.update((alias, url) for alias in _aliases(item))
    for item in items:
        resource = item.resource
        try:
            for holder in _references(resource):
                holder["reference"] = _rewrite(holder["reference"], urls, facility)
        except ValueError as e:
            return Rejection(item.where, f"{resource['resourceType']} {e}")
        original = resource.pop("id", None)
        if original:
            resource["id"] = hub_id(facility, resource["resourceType"], original)
        meta = resource.get("meta", {})
        for server_set in ("versionId", "lastUpdated"):
            meta.pop(server_set, None)
        attribute(resource, facility, organization)
    if len(builder.entries) == 1:
        return Rejection(source, "no resources to pass through")
    return builder.bundle()
