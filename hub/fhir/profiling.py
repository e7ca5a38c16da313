"""The national profiles at work: `$validate`, and the check of every write.

The country pack (`EHRHUB_COUNTRY`) says what a good record is. `$validate` tells a hospital
what to fix without storing anything. On write, `EHRHUB_PROFILE_MODE` decides what a record
breaking a profile gets: kept with its findings (lenient, the default: the rollout is not
blocked while quality is measured), or refused with them (strict). Either way the base model
is enforced first (`hub.fhir.validate`), and each stored version carries its findings and its
quality flags in `_hub.q`, so that a facility's data quality can be counted and drilled into.
https://hl7.org/fhir/R4/resource-operation-validate.html
"""

from functools import cache
from typing import Any

from fhir_profiles.pack import pack_of
from fhir_profiles.validator import RULE_SYSTEM, Issue, Validator, quality
from hub.auth.deps import require_scope
from hub.fhir.entry import Entry
from hub.fhir.outcome import BadRequest, BusinessRule, HubError, information, operation_outcome
from hub.fhir.outcome import Issue as OutcomeIssue
from hub.fhir.result import Context
from hub.fhir.validate import resource_type_of, storable_type, validate_resource

Resource = dict[str, Any]


@cache
def validator_for(country: str) -> Validator:
    """Return the validator of a country's pack, compiled once per process."""
    return Validator(pack_of(country))


def _located(issue: Issue, entry_path: str) -> str:
    """Return a finding's path within the request: under the Bundle entry, if any."""
    if not entry_path:
        return issue.path
    _, _, rest = issue.path.partition(".")
    return f"{entry_path}.resource" + (f".{rest}" if rest else "")


def outcome_issues(issues: list[Issue], entry_path: str = "") -> list[OutcomeIssue]:
    """Turn findings into OperationOutcome issues, each naming its rule in `details`."""
    return [
        OutcomeIssue(
            i.code,
            i.message,
            severity=i.severity,
            expression=[_located(i, entry_path)],
            details={"system": RULE_SYSTEM, "code": i.rule},
        )
        for i in issues
    ]


def stored_quality(validator: Validator, resource: Resource, issues: list[Issue]) -> Resource:
    """Return what a version keeps of its findings (`_hub.q`): its quality flags, and each
    finding with its rule, path, message and axis."""
    flags = quality(resource, issues, validator.pack.national_id_system)
    return {
        "valid": flags.valid,
        "complete": flags.complete,
        "coded": flags.coded,
        "identified": flags.identified,
        "findings": [
            {
                "severity": i.severity,
                "code": i.code,
                "rule": i.rule,
                "path": i.path,
                "message": i.message,
                "axis": i.axis,
            }
            for i in issues
        ],
    }


def check_profiles(ctx: Context, entries: list[Entry]) -> None:
    """Check each written resource against the national profiles: refuse (422) what breaks
    an error-level rule in strict mode; otherwise note the findings to store with it."""
    if ctx.settings.profile_mode == "off":
        return
    validator = validator_for(ctx.settings.country)
    for entry in entries:
        if entry.method not in ("POST", "PUT") or entry.resource is None:
            continue
        issues = validator.validate(entry.resource)
        errors = [i for i in issues if i.severity == "error"]
        if errors and ctx.settings.profile_mode == "strict":
            rtype = entry.target.resource_type
            raise BusinessRule(
                f"{rtype} breaks the national profile: {errors[0].message}",
                issues=outcome_issues(issues, entry.path),
            )
        entry.quality = stored_quality(validator, entry.resource, issues)
        if issues:
            entry.findings = outcome_issues(issues, entry.path)


def _parameters(body: Resource) -> tuple[Resource | None, str | None, str | None]:
    """Read $validate's Parameters: the resource, the profile and the mode."""
    resource = profile = mode = None
    parameters = body.get("parameter")
    if not isinstance(parameters, list):
        raise BadRequest("Parameters.parameter must be an array", expression="Parameters")
    for i, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            raise BadRequest(
                "A parameter must be an object", expression=f"Parameters.parameter[{i}]"
            )
        name = parameter.get("name")
        if name == "resource":
            resource = parameter.get("resource")
        elif name == "profile":
            profile = parameter.get("valueUri") or parameter.get("valueCanonical")
        elif name == "mode":
            mode = parameter.get("valueCode")
    return resource, profile, mode


def validate_operation(
    ctx: Context, resource_type: str | None, body: Any, profile: str | None
) -> Resource:
    """Answer `$validate`: the OperationOutcome of a resource against the FHIR R4 base model
    and the national profile (the one named, else the pack's for its type). Stores nothing."""
    if not isinstance(body, dict):
        raise BadRequest("$validate expects a resource or a Parameters resource")
    mode = None
    if body.get("resourceType") == "Parameters":
        body, named, mode = _parameters(body)
        profile = profile or named
        if mode == "delete":
            return information("Deleting a resource breaks no profile")
        if body is None:
            raise BadRequest("Parameters has no 'resource' to validate", expression="Parameters")
    rtype = resource_type_of(body, "resource")
    storable_type(rtype)
    # Those who may write a type may ask whether a resource of it would pass.
    require_scope(ctx.caller, "c", rtype)
    if resource_type is not None and rtype != resource_type:
        raise BadRequest(
            f"The resource is a {rtype} but the URL is for {resource_type}",
            expression=f"{rtype}.resourceType",
        )
    validator = validator_for(ctx.settings.country)
    compiled = None
    if profile is not None:
        compiled = validator.profile(profile)
        if compiled is None:
            raise BadRequest(
                f"The profile {profile} is not one this hub knows: the {ctx.settings.country} "
                f"pack has {', '.join(sorted(validator.profiles)) or 'none'}",
                expression="profile",
            )
        if compiled.type != rtype:
            raise BadRequest(
                f"The profile {profile} is for {compiled.type}, not {rtype}", expression="profile"
            )
    try:
        validate_resource(body)
    except HubError as error:
        if error.status == 404:
            raise
        return operation_outcome(error.issues)
    issues = validator.validate(body, compiled.url if compiled else None)
    if not issues:
        against = compiled or validator.by_type.get(rtype)
        name = f"the national profile {against.title}" if against else "FHIR R4"
        return information(f"No problems: the {rtype} is valid against {name}")
    return operation_outcome(outcome_issues(issues))
