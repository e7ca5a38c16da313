"""Who asks, what is asked for, and the answer: the values the policy engine reasons about."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
PATIENT_PRIVACY = "patient-privacy"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
RESOURCE_TYPE_SYSTEM = "http://hl7.org/fhir/resource-types"
CONSENT_ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# The national facility-code system of the default country pack (Vietnam); the hub passes its own.
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
EMERGENCY = "ETREAT"

Label = tuple[str, str]
"""A security label as (system, code), as in a resource's meta.security."""

Code = tuple[str, str]
"""A Coding as (system, code)."""

Default = Literal["deny", "permit"]

# A literal relative reference, Type/id, possibly to one version (…/_history/2).
RELATIVE_REFERENCE = re.compile(
    r"(?P<key>[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


@dataclass(frozen=True)
class Access:
    """Who asks (their national facility code, and the clinician if known), when, and why
    (a v3-ActReason code).

    `practitioner` is "Practitioner/<id>" or an identifier "system|value", in the form the
    clinician is registered with. `break_glass` is a declared emergency: it requires ETREAT.
    """

    facility: str
    at: datetime
    purpose: str = "TREAT"
    break_glass: bool = False
    practitioner: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("Access.at must carry a time zone")
        if self.break_glass and self.purpose != EMERGENCY:
            raise ValueError(f"break the glass requires purpose {EMERGENCY}, not {self.purpose}")
        if self.practitioner is not None and not self.practitioner:
            raise ValueError("Access.practitioner is Practitioner/<id> or system|value, or None")


@dataclass(frozen=True)
class Record:
    """A record version as the policy sees it: its holder facility, its type, its
    meta.security labels, and the facts provisions may name.

    `key` is "Type/id"; `references` the literal relative references it makes, anywhere in
    it ("Encounter/e1", without a version); `codes` every Coding in it but meta.security;
    `period` the [start, end) instants of its clinical time, which the hub computes.
    """

    facility: str
    resource_type: str
    labels: frozenset[Label] = frozenset()
    key: str = ""
    references: frozenset[str] = frozenset()
    codes: frozenset[Code] = frozenset()
    period: tuple[datetime, datetime] | None = None

    def __post_init__(self) -> None:
        if self.period is not None:
            start, end = self.period
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("Record.period must carry a time zone")
            if end < start:
                raise ValueError("Record.period ends before it starts")

    @classmethod
    def of(
        cls,
        resource: Mapping[str, Any],
        facility: str,
        *,
        period: tuple[datetime, datetime] | None = None,
    ) -> "Record":
        """Describe a stored resource held by `facility`, its clinical time being `period`."""
        resource_type = str(resource.get("resourceType", ""))
        rid = resource.get("id")
        meta = resource.get("meta") or {}
        labels = frozenset(
            (str(c.get("system", "")), str(c.get("code", ""))) for c in meta.get("security") or ()
        )
        references, codes = _facts(resource)
        key = f"{resource_type}/{rid}" if isinstance(rid, str) and rid else ""
        return cls(facility, resource_type, labels, key, references, codes, period)


def _facts(resource: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[Code]]:
    """Return the literal relative references and the Codings found anywhere in a resource."""
    references: set[str] = set()
    codes: set[Code] = set()
    match = RELATIVE_REFERENCE.fullmatch

    def walk(node: Mapping[str, Any]) -> None:
        for name, value in node.items():
            if isinstance(value, str):
                if name == "reference":
                    found = match(value)
                    if found is not None:
                        references.add(found["key"])
                elif name == "code":
                    system = node.get("system")
                    # A Quantity has a system and a code (its unit) too, and a value.
                    if isinstance(system, str) and "value" not in node:
                        codes.add((system, value))
            elif isinstance(value, dict):
                if name == "meta":
                    walk({k: v for k, v in value.items() if k != "security"})
                else:
                    walk(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        walk(item)

    walk(resource)
    return frozenset(references), frozenset(codes)


@dataclass(frozen=True)
class Decision:
    """Whether a record may be shown, why, and whether only break-the-glass allowed it."""

    allowed: bool
    reason: str
    by_break_glass: bool = False


def label_key(label: Label) -> str:
    """Return the stored form of a security label: "system|code"."""
    system, code = label
    return f"{system}|{code}"


def security_labels(resource: Mapping[str, Any]) -> list[str]:
    """Return a resource's meta.security labels in stored form ("system|code")."""
    meta = resource.get("meta") or {}
    labels = {
        label_key((str(c.get("system", "")), str(c.get("code", ""))))
        for c in meta.get("security") or ()
    }
    return sorted(labels)
