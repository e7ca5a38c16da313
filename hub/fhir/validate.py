"""Validation of resources against the FHIR R4 base model (fhir.resources' R4B models)."""

from typing import Any

from pydantic import ValidationError

from fhir_profiles.base import base_problems
from hub.fhir.outcome import BadRequest, InvalidResource, Issue, MethodNotAllowed, NotFound
from hub.fhir.resource_types import COMPUTED, NOT_STORED, R4_RESOURCE_TYPES, model_class

# Pydantic's messages are written for programmers; these are for the hospital's integrator.
_MESSAGES = {
    "extra_forbidden": "Unknown element: it is not part of this resource type in FHIR R4",
    "missing": "Required element is missing",
    "model_field_validation.missing": "Required element is missing",
    "list_type": "Expected an array here",
    "string_type": "Expected a string here",
    "dict_type": "Expected a JSON object here",
    "model_type": "Expected a JSON object here",
}


def storable_type(resource_type: str) -> None:
    """Raise 404 unless the hub stores resources of this type (405 for those it computes)."""
    if resource_type in COMPUTED:
        raise MethodNotAllowed(
            f"{resource_type} is computed by the hub from its counters: read the measures at "
            "GET /fhir/Measure and their reports at GET /fhir/MeasureReport?measure=…"
        )
    if resource_type in NOT_STORED:
        raise NotFound(f"Resources of type {resource_type} are not stored by this hub")
    if model_class(resource_type) is None:
        if resource_type in R4_RESOURCE_TYPES:
            raise NotFound(f"Resource type {resource_type} is not supported by this hub")
        raise NotFound(f"Unknown resource type: {resource_type}")


def fhir_path(root: str, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into a FHIRPath-like element path."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}"
    return path


def issues_from(error: ValidationError, root: str) -> list[Issue]:
    """Turn a pydantic ValidationError into OperationOutcome issues."""
    issues = []
    for detail in error.errors(include_url=False):
        loc = tuple(p for p in detail["loc"] if p != "resource_type")
        message = _MESSAGES.get(detail["type"], detail["msg"])
        if detail["type"] == "value_error":
            message = str(detail["msg"]).removeprefix("Value error, ")
        issues.append(Issue("structure", message, expression=[fhir_path(root, loc)]))
    return issues


def resource_type_of(resource: Any, path: str) -> str:
    """Return the resourceType of a JSON body, or raise 400 naming where it is missing."""
    if not isinstance(resource, dict):
        raise BadRequest("Expected a FHIR resource (a JSON object)", expression=path)
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise BadRequest("The resource has no resourceType", expression=path)
    return resource_type


def validate_resource(resource: Any, path: str | None = None) -> str:
    """Check a resource against the R4 base model; return its type or raise 400 with the paths."""
    resource_type = resource_type_of(resource, path or "Resource")
    storable_type(resource_type)
    model = model_class(resource_type)
    assert model is not None
    try:
        model.model_validate(resource)
    except ValidationError as error:
        issues = issues_from(error, path or resource_type)
        raise InvalidResource(
            f"{resource_type} is not valid FHIR R4: {issues[0].diagnostics}", issues=issues
        ) from None
    except RecursionError:
        raise InvalidResource(
            f"{resource_type} is nested too deeply to be a FHIR resource",
            expression=path or resource_type,
        ) from None
    except (ValueError, TypeError) as error:
        raise InvalidResource(
            f"{resource_type} is not valid FHIR R4: {error}", expression=path or resource_type
        ) from None
    problems = base_problems(resource)
    if problems:
        root = path or resource_type
        issues = [
            Issue("value", message, expression=[root + where.removeprefix(resource_type)])
            for where, message in problems
        ]
        raise InvalidResource(
            f"{resource_type} is not valid FHIR R4: {issues[0].diagnostics}", issues=issues
        )
    return resource_type
