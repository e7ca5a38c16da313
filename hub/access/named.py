"""The patients a request names: a clinician reaches other facilities' records of these only.

A request names patients by its path (`Patient/x`, `Patient/x/$everything`, `Patient/x/Obs…`,
or any record of theirs read by id or version) and by its search parameters (`patient`,
`subject`, …, or any reference parameter given `Patient/<id>`, `Patient?_id=`,
`Patient?identifier=<national ID>`, `…identifier=` chained on a patient parameter). A
national ID names a person only under the national ID system: a hospital number or a bare
value names nobody. A search that names no patient reaches other facilities' records of
nobody: what a clinician finds by name, code or date is their own facility's.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# The search parameters through which a request names a patient's records.
PATIENT_PARAMS = frozenset({"patient", "subject", "beneficiary", "individual", "link"})


@dataclass
class Named:
    """The patients one request names: Patient ids, national IDs, and records read by key."""

    patients: set[str] = field(default_factory=set)
    national_ids: set[str] = field(default_factory=set)
    records: set[str] = field(default_factory=set)


def named_in(
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    national_system: str,
) -> Named:
    """Return the patients a request names by its path and search parameters."""
    named = Named()
    resource_type = path_params.get("resource_type")
    resource_id = path_params.get("resource_id")
    if "patient_id" in path_params:
        resource_type, resource_id = "Patient", path_params["patient_id"]
    if resource_type == "Patient" and resource_id:
        named.patients.add(resource_id)
    elif resource_type and resource_id:
        named.records.add(f"{resource_type}/{resource_id}")
    for name, value in query:
        base, _, chained = name.partition(".")
        base = base.split(":", 1)[0]
        for item in value.split(","):
            if chained.split(":", 1)[0] == "identifier" and base in PATIENT_PARAMS:
                named.national_ids.update(national(item, national_system))
            elif chained:
                continue
            elif base in PATIENT_PARAMS:
                named.patients.update(patient_id(item))
            elif "Patient/" in item:  # any reference parameter given a Patient reference
                named.patients.update(patient_id(item))
            elif resource_type == "Patient" and base == "_id":
                named.patients.add(item)
            elif resource_type == "Patient" and base == "identifier":
                named.national_ids.update(national(item, national_system))
    return named


def patient_id(value: str) -> list[str]:
    """Return the Patient id a reference search value names: "Patient/x", a URL ending so,
    or a bare id."""
    parts = value.strip().split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return [parts[-1]] if parts[-1] else []
    if "_history" in parts and parts.index("_history") >= 2:
        at = parts.index("_history")
        return [parts[at - 1]] if parts[at - 2] == "Patient" else []
    return [parts[0]] if len(parts) == 1 and parts[0] else []


def national(value: str, national_system: str) -> list[str]:
    """Return the national ID a token search value names: `system|value` of the national
    system only."""
    system, bar, code = value.rpartition("|")
    return [code.strip()] if bar and system.strip() == national_system and code.strip() else []
