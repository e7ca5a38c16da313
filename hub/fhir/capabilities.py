"""FHIR capabilities interaction: what this hub really implements.
https://hl7.org/fhir/R4/http.html#capabilities
"""

from functools import cache
from typing import Any

import hub
from hub.fhir.resource_types import stored_types

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
_SEARCH_PARAMS = [
    {
        "name": "_id",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
        "type": "token",
    },
    {
        "name": "identifier",
        "definition": "http://hl7.org/fhir/SearchParameter/clinical-identifier",
        "type": "token",
        "documentation": "system|value, |value or value; comma for OR",
    },
]


@cache
def _resources() -> list[dict[str, Any]]:
    return [
        {
            "type": t,
            "interaction": [{"code": code} for code in _INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchParam": _SEARCH_PARAMS,
        }
        for t in stored_types()
    ]


def capability_statement(base: str, released: str) -> dict[str, Any]:
    """Return the CapabilityStatement of this hub at `base`."""
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
                "resource": _resources(),
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
