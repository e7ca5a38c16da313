"""What a reader sees of a stored AuditEvent: an auditor the whole event; a patient the event
cut down to their own records, whatever else the request named.

Every read of the trail (search, POST _search, history, read) turns stored events into what it
returns here, through `event_for`: tests/audit/test_patient_view.py holds each path to it.
"""

import copy
import re
from typing import Any

from hub.audit.event import ENTITY_TYPE, patient_entity

PATIENT_ROLE = "1"
# A resource named in a request's path ("/fhir/Patient/123/$everything"): a type, then an id
# (not an operation's $name nor a _history or _search segment).
_PATH_RESOURCE = re.compile(r"/([A-Z][A-Za-z]+)/([^/\s:?$_][^/\s:?]*)")


def event_for(doc: dict[str, Any], patients: set[str] | None) -> dict[str, Any]:
    """Return the AuditEvent of a stored document as its reader sees it: whole when
    `patients` is None (an auditor), else cut down to the person whose Patients they are."""
    event = {k: v for k, v in doc.items() if k not in ("_id", "_hub")}
    if patients is None:
        return event
    return _cut_down(copy.deepcopy(event), doc.get("_hub") or {}, patients)


def _cut_down(event: dict[str, Any], keys: dict[str, Any], own: set[str]) -> dict[str, Any]:
    """Keep of an event only the person's own Patients and the resources of their records;
    say the query without its values and count what was left out."""
    compartments = {c["resource"]: set(c["patients"]) for c in keys.get("compartments", [])}
    entities: list[dict[str, Any]] = []
    shown: set[str] = set()
    left_out = {"resources": 0, "patients": 0}
    for entity in event.get("entity", []):
        reference = (entity.get("what") or {}).get("reference")
        if "query" in entity:
            entities.append(_query_said(entity))
        elif reference is None:
            entities.append(entity)
        elif reference in own or compartments.get(reference, set()) & own:
            entities.append(entity)
            shown.add(reference)
        elif _role(entity) == PATIENT_ROLE:
            left_out["patients"] += 1
        else:
            left_out["resources"] += 1
    # Named among the indexed patients but over the listing limit: the reader is named anyway.
    named = {e["what"]["reference"] for e in entities if _role(e) == PATIENT_ROLE}
    for reference in sorted(own & set(keys.get("patients", [])) - named):
        entities.append(patient_entity(reference))
        shown.add(reference)
    if left_out["resources"] or left_out["patients"]:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "4", "display": "Other"},
                "description": f"not shown: {left_out['resources']} more resources, "
                f"{left_out['patients']} more patients, of other people's records",
            }
        )
    if entities:
        event["entity"] = entities
    else:
        event.pop("entity", None)
    if "outcomeDesc" in event:
        event["outcomeDesc"] = _PATH_RESOURCE.sub(
            lambda m: m.group(0) if f"{m[1]}/{m[2]}" in shown else f"/{m[1]}/(not shown)",
            event["outcomeDesc"],
        )
    for agent in event.get("agent", []):
        # A break-the-glass reason is free text that may name anyone: for auditors.
        for purpose in agent.get("purposeOfUse", []):
            purpose.pop("text", None)
    return event


def _query_said(entity: dict[str, Any]) -> dict[str, Any]:
    """Return a query entity without the query: its values may name other people."""
    said = {k: v for k, v in entity.items() if k != "query"}
    said["description"] = "a search query; its parameters' values are shown to auditors only"
    return said


def _role(entity: dict[str, Any]) -> str | None:
    role = entity.get("role") or {}
    code = role.get("code") if isinstance(role, dict) else None
    return code if isinstance(code, str) else None
