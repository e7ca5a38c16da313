"""What one request did, noted while it runs: the middleware turns it into an AuditEvent."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hub.search.extract import Reference, values
from hub.search.registry import registry


@dataclass
class Record:
    """The resources a request returned or wrote, and the patients whose records they are."""

    resources: list[str] = field(default_factory=list)  # "Type/id", in order, no duplicates
    patients: list[str] = field(default_factory=list)  # "Patient/id"
    resources_left_out: int = 0
    patients_left_out: int = 0
    bundle_type: str | None = None  # transaction or batch, once the router has read it
    # Beyond these, resources and patients are counted but not listed (or, for patients,
    # indexed): a search page or a transaction can hold thousands, and the event must stay
    # small (EHRHUB_AUDIT_MAX_LISTED, EHRHUB_AUDIT_MAX_INDEXED_PATIENTS).
    max_listed: int = 50
    max_indexed: int = 1000
    # The Patients whose compartment each listed resource belongs to: what a patient reading
    # the event may see of it (hub/audit/view.py).
    compartments: dict[str, list[str]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    # The compartment Patients of each entry of a Bundle written, until the response says
    # which resource each entry became.
    _entries: list[list[str]] = field(default_factory=list)
    # The records returned, by the facility holding them (`_hub.fac`): for the counters of
    # records exchanged between facilities (hub/reporting/counters.py).
    holders: Counter[str] = field(default_factory=Counter)

    def held(self, facility: str | None) -> None:
        """Note one record returned, held by a facility (None: the registry's)."""
        if facility:
            self.holders[facility] += 1

    def resource(self, reference: str, patients: list[str] | None = None) -> None:
        """Note one resource returned or written, and the Patients whose compartment it
        belongs to (a Patient is in its own)."""
        own = [reference] if reference.startswith("Patient/") else []
        owners = list(dict.fromkeys(own + (patients or [])))  # in order, once each
        if reference not in self._seen:
            self._seen.add(reference)
            if len(self.resources) < self.max_listed:
                self.resources.append(reference)
            else:
                self.resources_left_out += 1
        if reference in self.resources:
            listed = self.compartments.setdefault(reference, [])
            listed += [p for p in owners if p not in listed]
        for patient in owners:
            self.patient(patient)

    def patient(self, reference: str) -> None:
        """Note one Patient whose record the request touched."""
        if reference in self.patients:
            return
        if len(self.patients) < self.max_indexed:
            self.patients.append(reference)
        else:
            self.patients_left_out += 1

    def resource_json(self, resource: Any) -> None:
        """Note a resource as FHIR JSON, and the Patients whose compartment it belongs to."""
        if not isinstance(resource, dict):
            return
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or rtype == "OperationOutcome":
            return
        patients = compartment_patients(resource)
        if isinstance(rid, str):
            self.resource(f"{rtype}/{rid}", patients)
            return
        for patient in patients:
            self.patient(patient)

    def result(self, body: Any, stored: Any) -> None:
        """Note what an interaction's result holds: a stored version or a Bundle of them."""
        if stored is not None:
            self.resource(f"{stored.resource_type}/{stored.id}")
            if not stored.deleted:
                self.held(stored.facility)
                self.resource_json(stored.resource)
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            for index, entry in enumerate(body.get("entry") or []):
                if not isinstance(entry, dict):
                    continue
                resource = entry.get("resource")
                if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
                    # A batch or transaction GET's search or history: what it returned.
                    self.result(resource, None)
                elif resource is not None:
                    self.resource_json(resource)
                location = (entry.get("response") or {}).get("location")
                if isinstance(location, str) and location.count("/") >= 1:
                    # A response's entries answer the written Bundle's, in order.
                    written = self._entries[index] if index < len(self._entries) else []
                    self.resource("/".join(location.split("/")[:2]), written)
        elif isinstance(body, dict) and stored is None:
            self.resource_json(body)

    def written(self, bundle: Any) -> None:
        """Note the patients of a processed Bundle's resources (their references resolved)."""
        if not isinstance(bundle, dict) or not isinstance(bundle.get("entry"), list):
            return
        self._entries = []
        for entry in bundle["entry"]:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            patients: list[str] = []
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                patients = compartment_patients(resource)
            self._entries.append(patients)
            for patient in patients:
                self.patient(patient)


def compartment_patients(resource: dict[str, Any]) -> list[str]:
    """Return the Patient references whose compartment a resource belongs to."""
    rtype = resource["resourceType"]
    if rtype == "Patient":
        rid = resource.get("id")
        return [f"Patient/{rid}"] if isinstance(rid, str) else []
    reg = registry()
    codes = reg.compartment.get(rtype)
    if not codes:
        return []
    params = reg.params(rtype)
    found = []
    for code in codes:
        for ref in values(resource, params[code]):
            if (
                isinstance(ref, Reference)
                and ref.reference
                and ref.reference.startswith("Patient/")
            ):
                found.append(ref.reference)
    return found
