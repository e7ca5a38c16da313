"""Read FHIR R4 Consent resources into provision trees the policy evaluates.

https://hl7.org/fhir/R4/consent.html. Only what the engine understands is accepted: anything
that could change a provision's meaning and is not understood (a Practitioner actor, a
provision.code, a purpose from another system, ...) is an error naming its element path,
never silently ignored, because ignoring a condition widens what a provision covers.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal

from consent.model import (
    ACT_CODE_SYSTEM,
    CONSENT_ACTION_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    PATIENT_PRIVACY,
    PURPOSE_SYSTEM,
    RESOURCE_TYPE_SYSTEM,
    Label,
)

Effect = Literal["deny", "permit"]

# Reading a record held elsewhere is access to it, its use, and its disclosure to the reader.
_READING_ACTIONS = frozenset({"access", "use", "disclose"})
# Consent.policyRule codes that give the base decision when the root provision has no type.
_POLICY_RULES: dict[str, Effect] = {"OPTIN": "permit", "OPTOUT": "deny"}
_UNSUPPORTED = ("dataPeriod", "data", "code")
_DATETIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?P<f>\.\d+)?(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?"
)


class MalformedConsent(ValueError):
    """A Consent the engine cannot read; `path` names the element (Consent.provision.period)."""

    def __init__(self, path: str, problem: str, consent: str = "") -> None:
        self.path = path
        self.consent = consent
        where = f" ({consent})" if consent else ""
        super().__init__(f"{path}: {problem}{where}")


@dataclass(frozen=True)
class Provision:
    """One provision: its effect where all its conditions hold, and its exceptions.

    A condition left as None is absent and holds for every access and record. `start` and
    `end` bound the instants the provision is in force, `end` exclusive.
    """

    path: str
    effect: Effect
    actors: frozenset[str] | None = None
    purposes: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    classes: frozenset[str] | None = None
    labels: frozenset[Label] | None = None
    provisions: tuple["Provision", ...] = ()

    def covers_access(self, facility: str, purpose: str, at: datetime) -> bool:
        """Tell whether the access-side conditions (actor, purpose, period) hold."""
        return (
            (self.actors is None or facility in self.actors)
            and (self.purposes is None or purpose in self.purposes)
            and (self.start is None or self.start <= at)
            and (self.end is None or at < self.end)
        )

    def covers_record(self, resource_type: str, labels: frozenset[Label]) -> bool:
        """Tell whether the record-side conditions (class, securityLabel) hold."""
        return (self.classes is None or resource_type in self.classes) and (
            self.labels is None or not self.labels.isdisjoint(labels)
        )


@dataclass(frozen=True)
class ParsedConsent:
    """An active patient-privacy Consent: its name for reasons, when it took effect, its rules."""

    name: str
    issued: datetime | None
    root: Provision | None


def fhir_instants(
    value: object, path: str, consent: str = "", zone: tzinfo = UTC
) -> tuple[datetime, datetime]:
    """Return the first instant a FHIR dateTime covers and the instant just after its last.

    "2026" covers the whole year; dates without a time are days in `zone`.
    """
    match = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise MalformedConsent(path, f"{value!r} is not a FHIR dateTime", consent)
    g = match.groupdict()
    try:
        year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
        if g["H"] is None:
            first = datetime(year, month, day, tzinfo=zone)
            if g["m"] is None:
                return first, first.replace(year=year + 1)
            if g["d"] is None:
                after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
                return first, after
            return first, first + timedelta(days=1)
        tz: tzinfo = UTC
        if g["tz"] != "Z":
            sign = -1 if g["tz"][0] == "-" else 1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micro = int((g["f"] or ".0")[1:7].ljust(6, "0"))
        first = datetime(year, month, day, int(g["H"]), int(g["M"]), int(g["S"]), micro, tz)
        step = timedelta(microseconds=1) if g["f"] else timedelta(seconds=1)
        return first, first + step
    except ValueError as exc:
        raise MalformedConsent(path, f"{value!r} is not a valid date: {exc}", consent) from None


def organization_references(consents: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Return the literal Organization references the actors of these Consents use.

    The hub resolves these to facility codes and passes them to `Policy.from_consents`.
    """
    found: set[str] = set()

    def walk(provision: object) -> None:
        if not isinstance(provision, Mapping):
            return
        for actor in _list(provision.get("actor")):
            ref = actor.get("reference") if isinstance(actor, Mapping) else None
            literal = ref.get("reference") if isinstance(ref, Mapping) else None
            if isinstance(literal, str) and literal.startswith("Organization/"):
                found.add(literal)
        for nested in _list(provision.get("provision")):
            walk(nested)

    for consent in consents:
        walk(consent.get("provision"))
    return frozenset(found)


def parse_consent(
    resource: Mapping[str, Any],
    organizations: Mapping[str, str],
    facility_system: str,
    zone: tzinfo = UTC,
    index: int = 0,
) -> ParsedConsent | None:
    """Read one Consent; None when it is not active or not a patient-privacy consent.

    Dates without a time (a period ending "2026-12-31") are days in `zone`.
    """
    rid = resource.get("id")
    name = f"Consent/{rid}" if isinstance(rid, str) and rid else f"consent #{index}"
    reader = _Reader(name, organizations, facility_system, zone)
    if resource.get("resourceType") != "Consent":
        raise MalformedConsent("resourceType", "expected Consent", name)
    status = resource.get("status")
    if not isinstance(status, str):
        raise MalformedConsent("Consent.status", "missing or not a code", name)
    if status != "active" or not reader.is_privacy_scope(resource.get("scope")):
        return None
    issued = None
    if "dateTime" in resource:
        issued = fhir_instants(resource["dateTime"], "Consent.dateTime", name, zone)[0]
    base = reader.policy_rule(resource.get("policyRule"))
    provision = resource.get("provision")
    if provision is None:
        if base is None:
            raise MalformedConsent(
                "Consent.provision", "missing, and no policyRule OPTIN or OPTOUT", name
            )
        return ParsedConsent(name, issued, Provision("Consent.policyRule", base))
    return ParsedConsent(name, issued, reader.provision(provision, "Consent.provision", base))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


class _Reader:
    """Reads the elements of one Consent, naming the consent in every error."""

    def __init__(
        self, name: str, organizations: Mapping[str, str], facility_system: str, zone: tzinfo
    ):
        self.name = name
        self.organizations = organizations
        self.facility_system = facility_system
        self.zone = zone

    def fail(self, path: str, problem: str) -> MalformedConsent:
        return MalformedConsent(path, problem, self.name)

    def items(self, value: object, path: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not value:
            raise self.fail(path, "expected a non-empty array")
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{path}[{i}]", "expected an object")
        return value

    def codes(self, value: object, path: str, system: str) -> frozenset[str]:
        """Read an array of Codings, all from `system`."""
        found = set()
        for i, coding in enumerate(self.items(value, path)):
            if coding.get("system") != system:
                raise self.fail(f"{path}[{i}].system", f"expected {system}")
            code = coding.get("code")
            if not isinstance(code, str) or not code:
                raise self.fail(f"{path}[{i}].code", "missing")
            found.add(code)
        return frozenset(found)

    def is_privacy_scope(self, scope: object) -> bool:
        if not isinstance(scope, Mapping):
            raise self.fail("Consent.scope", "missing or not a CodeableConcept")
        return any(
            isinstance(c, Mapping)
            and c.get("system") == CONSENT_SCOPE_SYSTEM
            and c.get("code") == PATIENT_PRIVACY
            for c in _list(scope.get("coding"))
        )

    def policy_rule(self, rule: object) -> Effect | None:
        if not isinstance(rule, Mapping):
            return None
        for coding in _list(rule.get("coding")):
            if isinstance(coding, Mapping) and coding.get("system") == ACT_CODE_SYSTEM:
                effect = _POLICY_RULES.get(str(coding.get("code")))
                if effect:
                    return effect
        return None

    def provision(self, node: object, path: str, inherited: Effect | None) -> Provision | None:
        """Read a provision and its exceptions; None when it can never govern reading."""
        if not isinstance(node, Mapping):
            raise self.fail(path, "expected an object")
        for element in _UNSUPPORTED:
            if element in node:
                raise self.fail(f"{path}.{element}", "not supported by the consent engine")
        effect = node.get("type", inherited)
        if effect not in ("deny", "permit"):
            if "type" in node:
                raise self.fail(f"{path}.type", f"expected deny or permit, not {effect!r}")
            missing = "missing (required in nested provisions)"
            if inherited is None and path == "Consent.provision":
                missing = "missing, and no policyRule OPTIN or OPTOUT"
            raise self.fail(f"{path}.type", missing)
        if "action" in node and not self.reads(node["action"], f"{path}.action"):
            return None
        start = end = None
        if "period" in node:
            start, end = self.period(node["period"], f"{path}.period")
        nested = []
        if "provision" in node:
            for i, child in enumerate(self.items(node["provision"], f"{path}.provision")):
                # A nested provision must say its own type: no inheritance below the root.
                read = self.provision(child, f"{path}.provision[{i}]", None)
                if read is not None:
                    nested.append(read)
        return Provision(
            path=path,
            effect=effect,
            actors=self.actors(node["actor"], f"{path}.actor") if "actor" in node else None,
            purposes=self.codes(node["purpose"], f"{path}.purpose", PURPOSE_SYSTEM)
            if "purpose" in node
            else None,
            start=start,
            end=end,
            classes=self.codes(node["class"], f"{path}.class", RESOURCE_TYPE_SYSTEM)
            if "class" in node
            else None,
            labels=self.labels(node["securityLabel"], f"{path}.securityLabel")
            if "securityLabel" in node
            else None,
            provisions=tuple(nested),
        )

    def reads(self, actions: object, path: str) -> bool:
        """Tell whether a provision's actions include reading records."""
        found = False
        for i, concept in enumerate(self.items(actions, path)):
            codes = self.codes(concept.get("coding"), f"{path}[{i}].coding", CONSENT_ACTION_SYSTEM)
            found = found or not codes.isdisjoint(_READING_ACTIONS)
        return found

    def period(self, period: object, path: str) -> tuple[datetime | None, datetime | None]:
        if not isinstance(period, Mapping) or not ({"start", "end"} & period.keys()):
            raise self.fail(path, "expected a Period with a start or an end")
        start = end = None
        if "start" in period:
            start = fhir_instants(period["start"], f"{path}.start", self.name, self.zone)[0]
        if "end" in period:
            end = fhir_instants(period["end"], f"{path}.end", self.name, self.zone)[1]
        if start is not None and end is not None and end <= start:
            raise self.fail(path, "end is before start")
        return start, end

    def labels(self, value: object, path: str) -> frozenset[Label]:
        found = set()
        for i, coding in enumerate(self.items(value, path)):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(system, str) or not system:
                raise self.fail(f"{path}[{i}].system", "missing")
            if not isinstance(code, str) or not code:
                raise self.fail(f"{path}[{i}].code", "missing")
            found.add((system, code))
        return frozenset(found)

    def actors(self, value: object, path: str) -> frozenset[str]:
        """Read the facility codes of the actors: Organizations, literal or by facility code."""
        found = set()
        for i, actor in enumerate(self.items(value, path)):
            ref = actor.get("reference")
            where = f"{path}[{i}].reference"
            if not isinstance(ref, Mapping):
                raise self.fail(where, "missing")
            found.add(self.facility(ref, where))
        return frozenset(found)

    def facility(self, ref: Mapping[str, Any], path: str) -> str:
        if ref.get("type", "Organization") != "Organization":
            raise self.fail(f"{path}.type", "only Organization actors are supported")
        literal = ref.get("reference")
        if literal is not None:
            if not isinstance(literal, str) or not literal.startswith("Organization/"):
                problem = f"{literal!r}: only Organization actors are supported"
                if isinstance(literal, str) and "/Organization/" in literal:
                    problem = f"{literal!r}: expected a relative reference Organization/<id>"
                raise self.fail(f"{path}.reference", problem)
            code = self.organizations.get(literal)
            if code is None:
                raise self.fail(f"{path}.reference", f"{literal} is not a known facility")
            return code
        identifier = ref.get("identifier")
        if not isinstance(identifier, Mapping):
            raise self.fail(path, "expected a reference or an identifier")
        if identifier.get("system") != self.facility_system:
            raise self.fail(f"{path}.identifier.system", f"expected {self.facility_system}")
        value = identifier.get("value")
        if not isinstance(value, str) or not value:
            raise self.fail(f"{path}.identifier.value", "missing")
        return value
