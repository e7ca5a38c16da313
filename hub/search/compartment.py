"""The Patient compartment: the resources that belong to a patient's record.
https://hl7.org/fhir/R4/compartmentdefinition-patient.html

Membership is read from the reference parameters the compartment definition names, so it
needs no index keys of its own: one `$in` over those parameters' keys finds a compartment.
"""

from typing import Any

from hub.search.extract import EXACT, Reference, values
from hub.search.registry import registry


def keys(patient_ids: list[str], types: list[str] | None = None) -> list[str]:
    """Return the index keys of the resources in these patients' compartments."""
    reg = registry()
    found: set[str] = set()
    for resource_type, codes in reg.compartment.items():
        if types is not None and resource_type not in types:
            continue
        for code in codes:
            for index_code in reg.params(resource_type)[code].index_codes:
                found.update(f"{resource_type}.{index_code}{EXACT}Patient/{p}" for p in patient_ids)
    return sorted(found)


def contains(resource: dict[str, Any], patient_ids: list[str]) -> bool:
    """Tell whether a resource is in any of these patients' compartments."""
    resource_type = resource["resourceType"]
    if resource_type == "Patient" and resource.get("id") in patient_ids:
        return True
    wanted = {f"Patient/{p}" for p in patient_ids}
    params = registry().params(resource_type)
    return any(
        isinstance(ref, Reference) and ref.reference in wanted
        for code in registry().compartment.get(resource_type, ())
        for ref in values(resource, params[code])
    )
