"""Read FHIR R4 Consent resources into provision trees the policy evaluates.

https://hl7.org/fhir/R4/consent.html. Only what the engine understands is accepted: anything
that could change a provision's meaning and is not understood (a CareTeam actor, an author's
role, a data reference by identifier, a modifier extension, ...) is an error naming its
element path, never silently ignored, because ignoring a condition widens what a provision
covers.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any, TypeVar

from consent.actors import Actors, read_actors
from consent.model import (
    ACT_CODE_SYSTEM,
    CONSENT_ACTION_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    PATIENT_PRIVACY,
    PURPOSE_SYSTEM,
    RELATIVE_REFERENCE,
    RESOURCE_TYPE_SYSTEM,
)
from consent.provision import Effect, Provision, Unenforceable
from consent.records import read_codes, read_data, read_labels

# Reading a record held elsewhere is access to it, its use, and its disclosure to the reader.
_READING_ACTIONS = frozenset({"access", "use", "disclose"})
# Consent.policyRule codes that give the base decision when the root provision has no type.
_POLICY_RULES: dict[str, Effect] = {"OPTIN": "permit", "OPTOUT": "deny"}
# The elements of an R4 Consent.provision ("_type" carries the extensions of `type`).
_ELEMENTS = frozenset(
    "id extension modifierExtension type _type period actor action securityLabel purpose "
    "class code dataPeriod data provision".split()
)
# The elements by which a provision narrows what it covers (action only picks the activity).
_CONDITIONS = tuple("actor purpose period class securityLabel code dataPeriod data".split())
T = TypeVar("T")
_NO_RELATED: Mapping[str, frozenset[str]] = MappingProxyType({})
_DATETIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?P<f>\.\d+)?(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?"
)
# Why an untyped root provision with conditions of its own is refused (docs/consent.md, Limits).
_ROOT_TYPE_UNWRITTEN = (
    "missing: R4 makes the root provision 'an exception to the base policy' without saying "
    "which way, and reads it both ways (its example consent-example-basic as a permit, "
    "consent-example-notThem as a deny, both under policyRule OPTIN); a root provision "
    "with conditions of its own ({}) must state its type, permit or deny"
)


class MalformedConsent(ValueError):
    """A Consent the engine cannot read; `path` names the element (Consent.provision.period)."""

    def __init__(self, path: str, problem: str, consent: str = "") -> None:
        self.path = path
        self.consent = consent
        where = f" ({consent})" if consent else ""
        super().__init__(f"{path}: {problem}{where}")


@dataclass(frozen=True)
class ParsedConsent:
    """An active patient-privacy Consent: its name for reasons, when it took effect, its rules,
    and the facility whose records it governs (None: all the person's records)."""

    name: str
    issued: datetime | None
    root: Provision | None
    governs: str | None = None


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
    found = set()
    for provision in _provisions(consents):
        for actor in _list(provision.get("actor")):
            ref = actor.get("reference") if isinstance(actor, Mapping) else None
            literal = ref.get("reference") if isinstance(ref, Mapping) else None
            if isinstance(literal, str) and literal.startswith("Organization/"):
                found.add(literal)
    return frozenset(found)


def data_references(consents: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Return the records these Consents name in provision.data with meaning `related`.

    The hub looks each up and passes the references it makes (`Record.of(...).references`)
    as `related` to `Policy.from_consents`; one it does not find makes the Consent unreadable.
    """
    found = set()
    for provision in _provisions(consents):
        for item in _list(provision.get("data")):
            if not isinstance(item, Mapping) or item.get("meaning") != "related":
                continue
            ref = item.get("reference")
            literal = ref.get("reference") if isinstance(ref, Mapping) else None
            if isinstance(literal, str) and RELATIVE_REFERENCE.fullmatch(literal):
                found.add(literal)
    return frozenset(found)


def consent_name(resource: Mapping[str, Any], index: int) -> str:
    """Return how reasons and `governs` name a Consent: "Consent/<id>", else its position."""
    rid = resource.get("id")
    return f"Consent/{rid}" if isinstance(rid, str) and rid else f"consent #{index}"


def parse_consent(
    resource: Mapping[str, Any],
    organizations: Mapping[str, str],
    facility_system: str,
    zone: tzinfo = UTC,
    index: int = 0,
    *,
    related: Mapping[str, frozenset[str]] = _NO_RELATED,
    governs: str | None = None,
) -> ParsedConsent | None:
    """Read one Consent; None when it is not active or not a patient-privacy consent.

    Dates without a time (a period ending "2026-12-31") are days in `zone`.
    """
    name = consent_name(resource, index)
    reader = _Reader(name, organizations, facility_system, zone, related)
    if resource.get("resourceType") != "Consent":
        raise MalformedConsent("resourceType", "expected Consent", name)
    status = resource.get("status")
    if not isinstance(status, str):
        raise MalformedConsent("Consent.status", "missing or not a code", name)
    if status != "active" or not reader.is_privacy_scope(resource.get("scope")):
        return None
    reader.no_modifiers(resource, "Consent")
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
        return ParsedConsent(name, issued, Provision("Consent.policyRule", base), governs)
    if isinstance(provision, Mapping) and "type" not in provision:
        own = [element for element in _CONDITIONS if element in provision]
        if own:
            raise reader.fail("Consent.provision.type", _ROOT_TYPE_UNWRITTEN.format(", ".join(own)))
    root = reader.provision(provision, "Consent.provision", base)
    return ParsedConsent(name, issued, root, governs)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _provisions(consents: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Yield every provision of these Consents, nested ones included."""
    stack = [consent.get("provision") for consent in consents]
    while stack:
        provision = stack.pop()
        if isinstance(provision, Mapping):
            yield provision
            stack.extend(_list(provision.get("provision")))


class _Reader:
    """Reads the elements of one Consent, naming the consent in every error."""

    def __init__(
        self,
        name: str,
        organizations: Mapping[str, str],
        facility_system: str,
        zone: tzinfo,
        related: Mapping[str, frozenset[str]],
    ):
        self.name = name
        self.organizations = organizations
        self.facility_system = facility_system
        self.zone = zone
        self.related = related

    def fail(self, path: str, problem: str) -> MalformedConsent:
        return MalformedConsent(path, problem, self.name)

    def items(self, value: object, path: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not value:
            raise self.fail(path, "expected a non-empty array")
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{path}[{i}]", "expected an object")
        return value

    def no_modifiers(self, node: Mapping[str, Any], path: str) -> None:
        """Refuse a modifier extension: it changes the element's meaning in a way not known."""
        if "modifierExtension" in node:
            raise self.fail(
                f"{path}.modifierExtension", "changes the meaning in a way the engine cannot know"
            )

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
        self.no_modifiers(node, path)
        unknown = sorted(set(node) - _ELEMENTS)
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}", "not an element of an R4 Consent.provision")
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
        start = end = data_start = data_end = None
        if "period" in node:
            start, end = self.period(node["period"], f"{path}.period")
        if "dataPeriod" in node:
            data_start, data_end = self.period(node["dataPeriod"], f"{path}.dataPeriod")
        actors = Actors()
        if "actor" in node:
            actors = self.read(self.read_actors, node["actor"], f"{path}.actor")
        data_keys, data_referenced = None, frozenset[str]()
        if "data" in node:
            data_keys, data_referenced = self.read(self.read_data, node["data"], f"{path}.data")
        nested = []
        if "provision" in node:
            for i, child in enumerate(self.items(node["provision"], f"{path}.provision")):
                # A nested provision must say its own type: no inheritance below the root.
                read_child = self.provision(child, f"{path}.provision[{i}]", None)
                if read_child is not None:
                    nested.append(read_child)
        return Provision(
            path=path,
            effect=effect,
            actors=actors.facilities,
            practitioners=actors.practitioners,
            purposes=self.codes(node["purpose"], f"{path}.purpose", PURPOSE_SYSTEM)
            if "purpose" in node
            else None,
            start=start,
            end=end,
            classes=self.codes(node["class"], f"{path}.class", RESOURCE_TYPE_SYSTEM)
            if "class" in node
            else None,
            labels=self.read(read_labels, node["securityLabel"], f"{path}.securityLabel")
            if "securityLabel" in node
            else None,
            custodians=actors.custodians,
            data_keys=data_keys,
            data_referenced=data_referenced,
            data_period="dataPeriod" in node,
            data_start=data_start,
            data_end=data_end,
            codes=self.read(read_codes, node["code"], f"{path}.code") if "code" in node else None,
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

    def read_actors(self, items: list[Mapping[str, Any]]) -> Actors:
        return read_actors(items, self.organizations, self.facility_system)

    def read_data(self, items: list[Mapping[str, Any]]) -> tuple[frozenset[str], frozenset[str]]:
        return read_data(items, self.related)

    def read(self, reader: Callable[[list[Mapping[str, Any]]], T], value: object, path: str) -> T:
        """Read a non-empty array of objects with `reader`, naming the element it refuses."""
        items = self.items(value, path)
        for i, item in enumerate(items):
            self.no_modifiers(item, f"{path}[{i}]")
        try:
            return reader(items)
        except Unenforceable as error:
            raise self.fail(f"{path}{error.where}", error.problem) from None
