"""The Patient compartment: the resources that belong to a patient's record.
https://hl7.org/fhir/R4/compartmentdefinition-patient.html

Membership is read from the reference parameters the compartment definition names. A search
of one type in a compartment uses those parameters' keys; a whole record (`$everything`) uses
the one compartment key each member carries (`@Patient/id`).
"""

from typing import Any

from hub.search.extract import COMPARTMENT, EXACT, Reference, values
from hub.search.registry import registry


def keys(patient_ids: list[str], types: list[str]) -> list[str]:
    """Return the index keys of these types' resources in these patients' compartments."""
    reg = registry()
    found: set[str] = set()
    for resource_type, codes in reg.compartment.items():
        if resource_type not in types:
            continue
        for code in codes:
            for index_code in reg.params(resource_type)[code].index_codes:
                found.update(f"{resource_type}.{index_code}{EXACT}Patient/{p}" for p in patient_ids)
    return sorted(found)


def record_keys(patient_ids: list[str]) -> list[str]:
    """Return the compartment keys of these patients: every resource of their records but
    the Patient resources themselves."""
    return [f"{COMPARTMENT}Patient/{p}" for p in patient_ids]


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
