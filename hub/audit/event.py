"""Build one FHIR R4 AuditEvent from what a request did, or of a break-the-glass declaration.
https://hl7.org/fhir/R4/auditevent.html

Never recorded: a request body, a token, a secret. The query string is, base64 as FHIR says,
with the values of parameters that could carry a credential blanked.
"""

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hub.audit.interactions import Interaction
from hub.audit.record import Record
from hub.auth.caller import EMERGENCY, Caller
from hub.auth.roles import Role
from hub.store.resources import instant

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
OPERATION = "http://hl7.org/fhir/OperationDefinition"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
NETWORK_TYPE = "http://hl7.org/fhir/network-type"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
# Identifier.system of a value that is itself a URI.
URI = "urn:ietf:rfc:3986"
SOURCE = {
    "site": "ehrhub",
    "observer": {"display": "EHR Hub"},
    "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
}
# The hub's own identifiers of its clients and their roles.
CLIENT_SYSTEM = "urn:ehrhub:client"
ROLE_SYSTEM = "urn:ehrhub:role"
# agent.policy names the token that authorized the request by its `jti`, as IHE's Basic Audit
# Log Patterns do (https://profiles.ihe.net/ITI/BALP/): what ties an access to its declaration.
JTI_PREFIX = "urn:ietf:params:oauth:jti:"
# The break-the-glass security label (v3-ActReason BTG), on every event of an emergency access.
BTG_LABEL = {"system": ACT_REASON, "code": "BTG", "display": "break the glass"}
# The purpose of use of a caller that declared none: what its role does (v3-ActReason).
ROLE_PURPOSE = {
    Role.CLINICIAN: "TREAT",
    Role.FACILITY: "TREAT",
    Role.PATIENT: "PATRQT",
    Role.AUDITOR: "HCOMPL",
    Role.ADMIN: "HSYSADMIN",
    Role.MINISTRY: "HOPERAT",
}
# Query parameters whose values are never recorded, should a client send a credential there.
SECRET_PARAMS = frozenset(
    {"access_token", "token", "client_secret", "client_assertion", "password", "code"}
)


@dataclass(frozen=True)
class Declaration:
    """An emergency a clinician declared at /auth/break-glass, and the token it was given."""

    reason: str
    token_id: str  # the break-the-glass token's `jti`
    expires: datetime
    patient: str | None = None  # "Patient/id", when the clinician named one


@dataclass
class Request:
    """The HTTP facts of one request that the audit trail keeps."""

    method: str
    path: str
    query: str
    address: str | None
    status: int


def event_key(recorded: datetime) -> str:
    """Return a new event id that sorts by recorded time: 20261127T050102123Z-<random>."""
    return f"{recorded.strftime('%Y%m%dT%H%M%S')}{recorded.microsecond // 1000:03d}Z-" + (
        secrets.token_hex(6)
    )


def outcome(status: int) -> str:
    """Return AuditEvent.outcome for an HTTP status: 0 success, 4 minor, 8 serious failure."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def safe_query(query: str) -> str:
    """Return the query string with the values of credential-like parameters blanked."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        return query
    return urlencode([(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in pairs])


def purpose_of(caller: Caller) -> str | None:
    """Return the caller's purpose of use (a v3-ActReason code): the one its token declares
    (ETREAT under break the glass), else its role's ordinary one; None without a token."""
    if not caller.authenticated:
        return None
    return caller.purpose or (ROLE_PURPOSE.get(caller.role) if caller.role else None)


def audit_event(
    event_id: str,
    recorded: datetime,
    interaction: Interaction,
    request: Request,
    caller: Caller | None,
    record: Record,
    facility_system: str,
) -> dict[str, Any]:
    """Return the AuditEvent of one request; facilities are identified under `facility_system`."""
    subtype = [{"system": RESTFUL, "code": interaction.subtype}]
    if interaction.operation:
        subtype.append(
            {"system": OPERATION, "code": "Patient-everything", "display": interaction.operation}
        )
    purpose = purpose_of(caller) if caller else None
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": subtype,
        "action": interaction.action,
        "recorded": instant(recorded),
        "outcome": outcome(request.status),
        "outcomeDesc": f"HTTP {request.status} on {request.method} {request.path}",
        "agent": [_agent(caller, request, purpose, facility_system)],
        "source": SOURCE,
    }
    if caller is not None and caller.break_glass:
        # The break-the-glass flag: reviewed by the emergency-access report.
        event["meta"] = {"security": [BTG_LABEL]}
    entities = _entities(record, request)
    if entities:
        event["entity"] = entities
    return event


def declaration_event(
    event_id: str,
    recorded: datetime,
    request: Request,
    caller: Caller,
    declaration: Declaration | None,
    facility_system: str,
) -> dict[str, Any]:
    """Return the AuditEvent of a break-the-glass declaration (DICOM's Security Alert,
    Emergency Override Started): who declared, why, about whom, and the token it was given;
    without a declaration, of one refused."""
    agent = _agent(caller, request, EMERGENCY, facility_system)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": DICOM, "code": "110113", "display": "Security Alert"},
        "subtype": [{"system": DICOM, "code": "110127", "display": "Emergency Override Started"}],
        "action": "E",
        "recorded": instant(recorded),
        "outcome": outcome(request.status),
        "outcomeDesc": f"HTTP {request.status} on {request.method} {request.path}: "
        + ("emergency declared" if declaration else "no emergency access granted"),
        "agent": [agent],
        "source": SOURCE,
    }
    if declaration is None:
        return event
    event["meta"] = {"security": [BTG_LABEL]}
    agent["purposeOfUse"][0]["text"] = declaration.reason
    event["entity"] = [
        {
            "what": {"identifier": {"system": URI, "value": JTI_PREFIX + declaration.token_id}},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "13", "display": "Security Resource"},
            "description": "the break-the-glass access token issued",
            "detail": [{"type": "expires", "valueString": instant(declaration.expires)}],
        }
    ]
    if declaration.patient:
        event["entity"].append(patient_entity(declaration.patient))
    return event


def _agent(
    caller: Caller | None, request: Request, purpose: str | None, facility_system: str
) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True}
    if caller is None:
        agent["who"] = {"display": "unknown caller (no accepted token)"}
    elif not caller.authenticated:
        agent["who"] = {"display": "caller without a token (tokens not required)"}
    else:
        agent["who"] = {"identifier": {"system": CLIENT_SYSTEM, "value": caller.client_id}}
        if caller.role is not None:
            role = {"system": ROLE_SYSTEM, "code": str(caller.role)}
            agent["type"] = {"coding": [role]}
            agent["role"] = [{"coding": [role]}]
        if caller.facility:
            agent["location"] = {
                "identifier": {"system": facility_system, "value": caller.facility},
                "display": f"facility {caller.facility}",
            }
        if caller.practitioner:
            agent["altId"] = caller.practitioner
        if caller.token_id:
            agent["policy"] = [JTI_PREFIX + caller.token_id]
    if purpose:
        agent["purposeOfUse"] = [{"coding": [{"system": ACT_REASON, "code": purpose}]}]
        if caller is not None and caller.break_glass_reason:
            agent["purposeOfUse"][0]["text"] = caller.break_glass_reason
    if request.address:
        agent["network"] = {"address": request.address, "type": "2"}
    return agent


def _entities(record: Record, request: Request) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    for reference in record.resources:
        entities.append(
            {
                "what": {"reference": reference},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    for reference in record.patients[: record.max_listed]:
        entities.append(patient_entity(reference))
    patients_left = max(0, len(record.patients) - record.max_listed) + record.patients_left_out
    if record.resources_left_out or patients_left:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "4", "display": "Other"},
                "description": f"not listed: {record.resources_left_out} more resources, "
                f"{patients_left} more patients",
            }
        )
    if request.query:
        query = safe_query(request.query)
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(query.encode()).decode(),
            }
        )
    return entities


def patient_entity(reference: str) -> dict[str, Any]:
    """Return the entity naming a Patient whose record an event concerns."""
    return {
        "what": {"reference": reference},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }
