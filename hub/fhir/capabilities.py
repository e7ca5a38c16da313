"""FHIR capabilities interaction: what this hub really implements.
https://hl7.org/fhir/R4/http.html#capabilities
"""

from functools import cache
from typing import Any

import hub
from hub.audit import search as audit
from hub.auth.routes import LOGIN_PATH, TOKEN_PATH
from hub.fhir.profiling import validator_for
from hub.fhir.resource_types import stored_types
from hub.search.registry import COMMON, MODIFIERS, SearchParam, registry

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
_EVERYTHING = {
    "name": "everything",
    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "documentation": "Everything about the person: the records of every Patient that carries "
    "the same national identifier, as far as the caller may see them, with start, end, "
    "_since, _type and _count; at the type level (GET Patient/$everything), a patient's own "
    "whole record",
}
_VALIDATE = {
    "name": "validate",
    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "documentation": "The OperationOutcome of a resource (or a Parameters with resource, "
    "profile, mode) against the FHIR R4 base model and the country pack's national profile; "
    "nothing is stored",
}
_MODIFIER_TEXT = {
    "token": "system|code, |code, code or system|",
    "string": "starts with, ignoring case and accents",
    "date": "prefixes eq ne gt lt ge le sa eb ap; precision ranges; time zone offsets",
    "number": "prefixes eq ne gt lt ge le sa eb ap; precision ranges",
    "quantity": "prefixes; value|system|code or value||unit",
    "reference": "Type/id, id or URL; chained (param.param, param:Type.param)",
    "uri": "exact",
}


def _search_param(param: SearchParam) -> dict[str, Any]:
    modifiers = ", ".join(f":{m}" for m in MODIFIERS[param.type])
    if param.type == "reference":
        modifiers += ", :[type]"
    return {
        "name": param.code,
        "type": param.type,
        "documentation": f"{_MODIFIER_TEXT[param.type]}. Modifiers: {modifiers}",
    }


def _includes(resource_type: str) -> tuple[list[str], list[str]]:
    """Return the _include values of a type and the _revinclude values pointing at it."""
    reg = registry()
    forward = [
        f"{resource_type}:{p.code}"
        for p in reg.params(resource_type).values()
        if p.type == "reference"
    ]
    reverse = [
        f"{other}:{p.code}"
        for other, params in sorted(reg.by_type.items())
        for p in params.values()
        if p.type == "reference" and resource_type in p.targets
    ]
    return forward, reverse


@cache
def _resources(country: str) -> list[dict[str, Any]]:
    profiles = {p.type: p.url for p in validator_for(country).profiles.values()}
    return [_resource(t, profiles.get(t)) for t in stored_types()] + _computed()


def _computed() -> list[dict[str, Any]]:
    """Describe the measures: computed from the hub's counters, read-only, for the ministry."""
    return [
        {
            "type": "Measure",
            "documentation": "The measures of the national reports (coverage, people, data "
            "quality); the ministry's and admins' to read",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": "url", "type": "uri", "documentation": "the canonical URL"},
                {"name": "_id", "type": "token", "documentation": "the id"},
            ],
        },
        {
            "type": "MeasureReport",
            "documentation": "Summary reports of the measures, computed on request from the "
            "hub's counters (no personal data), stratified per province and level",
            "interaction": [{"code": "search-type"}],
            "searchParam": [
                {"name": "measure", "type": "reference", "documentation": "canonical URL or id"},
                {"name": "date", "type": "date", "documentation": "as of the end of this day"},
            ],
        },
    ]


def _resource(t: str, profile: str | None) -> dict[str, Any]:
    if t == "AuditEvent":
        return _audit_event()
    forward, reverse = _includes(t)
    found: dict[str, Any] = {
        "type": t,
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchInclude": forward,
        "searchRevInclude": reverse,
        "searchParam": [_search_param(p) for p in registry().params(t).values()],
    }
    found["operation"] = [_EVERYTHING, _VALIDATE] if t == "Patient" else [_VALIDATE]
    if profile is not None:
        found["supportedProfile"] = [profile]
    return found


def _audit_event() -> dict[str, Any]:
    """Describe the audit trail: read and searched, never written by clients."""
    return {
        "type": "AuditEvent",
        "documentation": "The hub's append-only audit trail: written by the hub alone; "
        "auditors search it all, patients the events about their own records",
        "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "history-type"}],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {"name": name, "type": kind, "documentation": audit.PARAMS[name]}
            for name, kind in (
                ("_id", "token"),
                ("patient", "reference"),
                ("agent", "token"),
                ("date", "date"),
            )
        ],
    }


def capability_statement(base: str, released: str, country: str) -> dict[str, Any]:
    """Return the CapabilityStatement of this hub at `base`, checking the national profiles
    of a country's pack."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": released,
        "publisher": "EHR Hub",
        "kind": "instance",
        "software": {"name": "EHR Hub", "version": hub.__version__},
        "implementation": {"description": "EHR Hub FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(base.removesuffix("/fhir")),
                "resource": _resources(country),
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                ],
                "searchParam": [
                    {"name": "_type", "type": "token", "documentation": "types to search"},
                    *(_search_param(p) for p in COMMON.values()),
                ],
                "operation": [_VALIDATE],
            }
        ],
    }


def _security(root: str) -> dict[str, Any]:
    """Return rest.security: OAuth2 as SMART on FHIR, with the token endpoint."""
    return {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": root + TOKEN_PATH}],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 client credentials (client_secret_post, private_key_jwt) "
                "with SMART v2 scopes",
            }
        ],
        "description": f"Bearer tokens from {root + TOKEN_PATH} (systems: client credentials "
        f"or a SMART client assertion) or {root + LOGIN_PATH} (people); discovery at "
        f"{root}/.well-known/smart-configuration",
    }
