"""Who asks, what is asked for, and the answer: the values the policy engine reasons about."""

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
# The national facility-code system of the default country pack (Vietnam); the hub passes its own.
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
EMERGENCY = "ETREAT"

Label = tuple[str, str]
"""A security label as (system, code), as in a resource's meta.security."""

Default = Literal["deny", "permit"]


@dataclass(frozen=True)
class Access:
    """Who asks (their national facility code), when, and why (a v3-ActReason code).

    `break_glass` is a declared emergency: it requires the purpose ETREAT.
    """

    facility: str
    at: datetime
    purpose: str = "TREAT"
    break_glass: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("Access.at must carry a time zone")
        if self.break_glass and self.purpose != EMERGENCY:
            raise ValueError(f"break the glass requires purpose {EMERGENCY}, not {self.purpose}")


@dataclass(frozen=True)
class Record:
    """A record as the policy sees it: its holder facility, its type, its meta.security labels."""

    facility: str
    resource_type: str
    labels: frozenset[Label] = frozenset()

    @classmethod
    def of(cls, resource: Mapping[str, Any], facility: str) -> "Record":
        """Describe a stored resource held by `facility`."""
        meta = resource.get("meta") or {}
        labels = frozenset(
            (str(c.get("system", "")), str(c.get("code", ""))) for c in meta.get("security") or ()
        )
        return cls(facility, str(resource.get("resourceType", "")), labels)


@dataclass(frozen=True)
class Decision:
    """Whether a record may be shown, why, and whether only break-the-glass allowed it."""

    allowed: bool
    reason: str
    by_break_glass: bool = False
