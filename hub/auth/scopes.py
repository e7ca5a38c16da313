"""SMART App Launch v2 scopes: parse, check, and what each role may hold.
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html

A scope is `<patient|user|system>/<ResourceType|*>.<letters>`, the letters a subset of
c (create), r (read), u (update), d (delete), s (search), in that order. SMART v1's `.read`,
`.write` and `.*` are accepted and translated to `.rs`, `.cud` and `.cruds`.
"""

import re
from dataclasses import dataclass

from hub.auth.roles import Role

LETTERS = "cruds"
CONTEXTS = ("patient", "user", "system")
ALL_TYPES = "*"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"(patient|user|system)/([A-Za-z]+|\*)\.([a-z]+|\*)")
# OpenID Connect and launch scopes a client may ask for alongside resource scopes; the hub
# grants none of them yet, and ignores rather than refuses them, as OAuth allows.
_IGNORED = re.compile(r"openid|fhirUser|profile|offline_access|online_access|launch(/.*)?")
# The resource types an admin maintains: the registry of facilities, places and practitioners.
REGISTRY_TYPES = ("Organization", "Location", "Practitioner")


class ScopeError(ValueError):
    """A scope that is not SMART's syntax, or that no role of the hub can hold."""


@dataclass(frozen=True, order=True)
class SmartScope:
    """One SMART resource scope, e.g. `user/Observation.rs`."""

    context: str
    resource_type: str
    letters: str

    def __str__(self) -> str:
        return f"{self.context}/{self.resource_type}.{self.letters}"

    def allows(self, letter: str, resource_type: str) -> bool:
        """Tell whether this scope permits one interaction letter on a resource type."""
        return letter in self.letters and self.resource_type in (ALL_TYPES, resource_type)

    def meet(self, other: "SmartScope") -> "SmartScope | None":
        """Return what both scopes permit, or None when they share nothing."""
        if self.context != other.context:
            return None
        if self.resource_type == ALL_TYPES:
            resource_type = other.resource_type
        elif other.resource_type in (ALL_TYPES, self.resource_type):
            resource_type = self.resource_type
        else:
            return None
        letters = "".join(c for c in LETTERS if c in self.letters and c in other.letters)
        return SmartScope(self.context, resource_type, letters) if letters else None


def parse_scope(text: str) -> SmartScope:
    """Parse one SMART resource scope (v2, or v1 translated to v2)."""
    if "?" in text:
        raise ScopeError(f"scope {text!r}: granular scopes (with ?query) are not supported")
    found = _SCOPE.fullmatch(text)
    if found is None:
        raise ScopeError(
            f"scope {text!r} is not of the form patient|user|system/<Type or *>.<cruds>"
        )
    context, resource_type, letters = found.groups()
    letters = _V1.get(letters, letters)
    if not letters or any(c not in LETTERS for c in letters):
        raise ScopeError(f"scope {text!r}: the permissions must be letters of 'cruds'")
    if letters != "".join(c for c in LETTERS if c in letters):
        raise ScopeError(f"scope {text!r}: the letters must come in the order c r u d s")
    return SmartScope(context, resource_type, letters)


@dataclass(frozen=True)
class Scopes:
    """A set of SMART resource scopes, such as a token carries."""

    items: frozenset[SmartScope] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> "Scopes":
        """Parse a space-separated scope string; ignore OpenID and launch scopes."""
        items = {parse_scope(word) for word in (text or "").split() if not _IGNORED.fullmatch(word)}
        return cls(frozenset(items))

    @classmethod
    def of(cls, *texts: str) -> "Scopes":
        """Return the scopes written as separate strings."""
        return cls(frozenset(parse_scope(text) for text in texts))

    def __str__(self) -> str:
        return " ".join(str(item) for item in sorted(self.items))

    def __bool__(self) -> bool:
        return bool(self.items)

    def allows(self, letter: str, resource_type: str) -> bool:
        """Tell whether any scope permits one interaction letter on a resource type."""
        return any(item.allows(letter, resource_type) for item in self.items)

    def meet(self, other: "Scopes") -> "Scopes":
        """Return what both sets permit, scope by scope."""
        met = {m for a in self.items for b in other.items if (m := a.meet(b)) is not None}
        # Drop a scope another already covers: system/*.rs covers system/Patient.r.
        kept = {m for m in met if not any(o != m and _covers(o, m) for o in met)}
        return Scopes(frozenset(kept))


def _covers(wide: SmartScope, narrow: SmartScope) -> bool:
    return (
        wide.context == narrow.context
        and wide.resource_type in (ALL_TYPES, narrow.resource_type)
        and all(c in wide.letters for c in narrow.letters)
    )


# The most each role may hold; a token gets what it asks for within this, or all of it.
ROLE_SCOPES: dict[Role, Scopes] = {
    Role.ADMIN: Scopes.of(*(f"system/{t}.cruds" for t in REGISTRY_TYPES)),
    Role.FACILITY: Scopes.of("system/*.cruds"),
    Role.CLINICIAN: Scopes.of("user/*.rs"),
    # A person reads their own records and writes their own consents (docs/consent.md).
    Role.PATIENT: Scopes.of("patient/*.rs", "patient/Consent.cud"),
    Role.AUDITOR: Scopes.of("user/AuditEvent.rs"),
    # The ministry reads aggregate reports only, never a FHIR resource.
    Role.MINISTRY: Scopes(),
}


def grant(role: Role, requested: str | None) -> Scopes:
    """Return the scopes a token of this role gets for a request's `scope` parameter: all the
    role may hold when none is asked for, else the intersection, which must not be empty."""
    allowed = ROLE_SCOPES[role]
    if requested is None or not requested.strip():
        return allowed
    asked = Scopes.parse(requested)
    if not asked:
        raise ScopeError(f"none of the scopes {requested!r} is a SMART resource scope")
    granted = asked.meet(allowed)
    if not granted:
        raise ScopeError(
            f"the {role} role may hold {str(allowed) or 'no FHIR scope'}; "
            f"nothing of {str(asked)!r} is within it"
        )
    return granted
