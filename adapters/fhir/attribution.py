"""Where a facility's attribution goes in a resource: meta.source, a meta.tag, and the element
FHIR gives a resource's responsible organization, when the sender left it empty."""

from adapters.base import FACILITY_SYSTEM, Facility, Resource

# Resource type -> the element naming the organization responsible for it, and whether that
# element repeats. Only set when absent: a sender's own value is never overwritten.
ORGANIZATION_ELEMENTS: dict[str, tuple[str, bool]] = {
    "Patient": ("managingOrganization", False),
    "Encounter": ("serviceProvider", False),
    "Observation": ("performer", True),
    "DiagnosticReport": ("performer", True),
}


def source(facility: Facility) -> str:
    """Return the meta.source of every resource a facility sends."""
    return facility.system("facility")


def attribute(resource: Resource, facility: Facility, organization: str) -> Resource:
    """Mark a resource as sent by the facility whose Organization is at `organization`."""
    meta = resource.setdefault("meta", {})
    meta["source"] = source(facility)
    tag = {"system": FACILITY_SYSTEM, "code": facility.code}
    tags = meta.setdefault("tag", [])
    if not any(t.get("system") == FACILITY_SYSTEM for t in tags):
        tags.append(tag | ({"display": facility.name} if facility.name else {}))
    element, repeats = ORGANIZATION_ELEMENTS.get(resource.get("resourceType", ""), ("", False))
    if element and not resource.get(element):
        reference = {"reference": organization}
        resource[element] = [reference] if repeats else reference
    return resource
