"""SMART scopes: parsing (v2, and v1 translated), checking, and what each role is granted."""

import pytest

from hub.auth.roles import Role
from hub.auth.scopes import ROLE_SCOPES, ScopeError, Scopes, SmartScope, grant, parse_scope


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("system/*.cruds", SmartScope("system", "*", "cruds")),
        ("user/Patient.rs", SmartScope("user", "Patient", "rs")),
        ("patient/Observation.r", SmartScope("patient", "Observation", "r")),
        ("user/Observation.read", SmartScope("user", "Observation", "rs")),
        ("system/Patient.write", SmartScope("system", "Patient", "cud")),
        ("user/*.*", SmartScope("user", "*", "cruds")),
    ],
)
def test_parse_v2_and_v1(text: str, parsed: SmartScope) -> None:
    assert parse_scope(text) == parsed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("system/*.rc", "order c r u d s"),
        ("system/*.x", "letters of 'cruds'"),
        ("admin/*.rs", "patient|user|system"),
        ("user/Patient", "patient|user|system"),
        ("user/Observation.rs?category=laboratory", "granular"),
        ("user/Patient.rs extra", "patient|user|system"),
    ],
)
def test_parse_refuses_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ScopeError, match=says.replace("|", r"\|").replace("'", ".")):
        Scopes.parse(text) if " " in text else parse_scope(text)


def test_openid_and_launch_scopes_are_ignored() -> None:
    assert str(Scopes.parse("openid fhirUser launch/patient user/Patient.rs")) == "user/Patient.rs"


def test_check_letter_and_type() -> None:
    scopes = Scopes.parse("user/Patient.rs user/Observation.r")
    assert scopes.allows("r", "Patient") and scopes.allows("s", "Patient")
    assert scopes.allows("r", "Observation")
    assert not scopes.allows("s", "Observation")
    assert not scopes.allows("c", "Patient")
    assert not scopes.allows("r", "Condition")
    assert Scopes.parse("system/*.cruds").allows("d", "Condition")


@pytest.mark.parametrize(
    ("role", "maximum"),
    [
        (Role.FACILITY, "system/*.cruds"),
        (Role.CLINICIAN, "user/*.rs"),
        (Role.PATIENT, "patient/*.rs patient/Consent.cud"),
        (Role.AUDITOR, "user/AuditEvent.rs"),
        (Role.MINISTRY, ""),
        (
            Role.ADMIN,
            "system/Location.cruds system/Organization.cruds system/Practitioner.cruds",
        ),
    ],
)
def test_role_maximum(role: Role, maximum: str) -> None:
    assert str(ROLE_SCOPES[role]) == maximum
    assert str(grant(role, None)) == maximum


@pytest.mark.parametrize(
    ("role", "asked", "granted"),
    [
        (Role.FACILITY, "system/Patient.rs system/Observation.cruds", None),
        (Role.FACILITY, "system/*.read", "system/*.rs"),
        (Role.CLINICIAN, "user/*.cruds", "user/*.rs"),
        (Role.CLINICIAN, "user/Patient.rs user/Observation.rs", None),
        (Role.CLINICIAN, "user/Patient.cruds system/*.cruds", "user/Patient.rs"),
        (
            Role.ADMIN,
            "system/*.rs",
            "system/Location.rs system/Organization.rs system/Practitioner.rs",
        ),
        (Role.ADMIN, "system/Organization.c system/Patient.r", "system/Organization.c"),
        (Role.AUDITOR, "user/*.rs", "user/AuditEvent.rs"),
        (Role.PATIENT, "patient/Observation.rs", None),
    ],
)
def test_grant_is_the_intersection(role: Role, asked: str, granted: str | None) -> None:
    expected = Scopes.parse(granted if granted is not None else asked)
    assert grant(role, asked) == expected


@pytest.mark.parametrize(
    ("role", "asked"),
    [
        (Role.CLINICIAN, "system/*.cruds"),
        (Role.CLINICIAN, "user/Patient.c"),
        (Role.MINISTRY, "user/Patient.rs"),
        (Role.AUDITOR, "user/Patient.rs"),
        (Role.PATIENT, "user/*.rs"),
        (Role.FACILITY, "openid"),
    ],
)
def test_grant_refuses_when_nothing_is_left(role: Role, asked: str) -> None:
    with pytest.raises(ScopeError):
        grant(role, asked)
