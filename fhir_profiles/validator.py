"""Validation of resources against a country pack's profiles.

A StructureDefinition's differential is compiled once into a tree of elements, each with its
rules; a resource is then walked along that tree only. Supported: cardinality (`min`, `max`,
at any depth: a child's `min` applies to each occurrence of its parent), `fixed[x]` and
`pattern[x]`, choice types (`value[x]` with a `type` list, and `valueQuantity`'s children),
slicing by the value of one child (`identifier` by `system`), bindings (required, extensible,
preferred) checked by the pack's terminology, FHIRPath invariants (fhirpathpy), must-support
elements, and the identifier checks a NamingSystem names (a citizen ID agreeing with the
Patient's gender and birth date). https://hl7.org/fhir/R4/profiling.html

Every finding says what is wrong in words a hospital clerk can act on, where (the element's
path in the resource), which rule (`<profile>/<element>/<check>`, or the invariant's key), and
which quality axis it costs: correct (error-level), sufficient (must-support data missing),
unified (national code systems not used), identified (the national person identifier).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import fhirpathpy

from fhir_profiles import identifiers
from fhir_profiles.pack import Pack, Resource
from fhir_profiles.terminology import Terminology

CHECK_EXTENSION = "https://ehrhub.org/fhir/StructureDefinition/identifier-check"
_SEVERITY = {"required": "error", "extensible": "warning", "preferred": "information"}


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about a resource."""

    severity: str  # error | warning | information
    code: str  # FHIR issue type: required, structure, value, code-invalid, invariant
    rule: str
    path: str
    message: str
    axis: str = "correct"  # correct | sufficient | unified | identified


# The system of the rule codes in an OperationOutcome issue's `details`.
RULE_SYSTEM = "https://ehrhub.org/fhir/CodeSystem/profile-rule"


@dataclass
class _Element:
    """One node of a compiled differential: the rules of an element, its children, slices."""

    name: str
    rule_prefix: str = ""
    min: int = 0
    max: int | None = None  # None: unbounded
    fixed: Any = None
    pattern: Any = None
    types: tuple[str, ...] = ()
    binding: tuple[str, str] | None = None  # (strength, value set)
    constraints: list[tuple[str, str, str, Callable[..., Any]]] = field(default_factory=list)
    must_support: bool = False
    short: str = ""
    children: dict[str, "_Element"] = field(default_factory=dict)
    slices: dict[str, "_Element"] = field(default_factory=dict)
    discriminator: str | None = None  # the child whose value picks an item's slice
    slice_value: Any = None  # in a slice: the discriminator child's fixed or pattern value
    identifying: bool = False  # a slice of the national person identifier

    @property
    def label(self) -> str:
        return self.short or self.name


def _segments(element_id: str) -> list[str]:
    """Split an element id (`Patient.identifier:cccd.value`) into its segments after the type."""
    return element_id.split(".")[1:]


def _value_of(element: Resource, prefix: str) -> Any:
    for key, value in element.items():
        if key.startswith(prefix) and key != prefix:
            return value
    return None


class Profile:
    """A compiled StructureDefinition."""

    def __init__(self, definition: Resource, national_id_system: str | None) -> None:
        self.url: str = definition["url"]
        self.id: str = definition.get("id") or definition["name"]
        self.type: str = definition["type"]
        self.title: str = definition.get("title") or definition.get("name") or self.id
        self.root = _Element(self.type)
        for element in definition.get("differential", {}).get("element", []):
            self._add(element)
        self._finish(self.root, national_id_system)

    def _add(self, element: Resource) -> None:
        node = self.root
        for segment in _segments(element["id"]):
            name, _, slice_name = segment.partition(":")
            node = node.children.setdefault(name, _Element(name))
            if slice_name:
                node = node.slices.setdefault(slice_name, _Element(name))
        node.rule_prefix = f"{self.id}/{element['id']}"
        node.min = int(element.get("min", node.min))
        if "max" in element:
            node.max = None if element["max"] == "*" else int(element["max"])
        node.fixed = _value_of(element, "fixed")
        node.pattern = _value_of(element, "pattern")
        node.types = tuple(t["code"] for t in element.get("type", []))
        if "binding" in element and "valueSet" in element["binding"]:
            node.binding = (element["binding"]["strength"], element["binding"]["valueSet"])
        for constraint in element.get("constraint", []):
            compiled = fhirpathpy.compile(constraint["expression"])
            node.constraints.append(
                (
                    constraint["key"],
                    constraint.get("severity", "error"),
                    constraint["human"],
                    compiled,
                )
            )
        node.must_support = bool(element.get("mustSupport"))
        node.short = element.get("short", "")
        slicing = element.get("slicing")
        if slicing and slicing.get("discriminator"):
            node.discriminator = slicing["discriminator"][0]["path"]

    def rules(self) -> dict[str, tuple[str, str]]:
        """Return every rule the profile checks, with the severity and quality axis of the
        finding it gives."""
        found: dict[str, tuple[str, str]] = {}
        pending = [self.root]
        while pending:
            node = pending.pop()
            pending += [*node.children.values(), *node.slices.values()]
            if not node.rule_prefix:
                continue
            axis = "identified" if node.identifying else "correct"
            checks = {
                "min": node.min > 0,
                "max": node.max is not None,
                "fixed": node.fixed is not None,
                "pattern": node.pattern is not None,
                "type": bool(node.types),
            }
            for check, present in checks.items():
                if present:
                    found[f"{node.rule_prefix}/{check}"] = ("error", axis)
            if node.must_support and node.min == 0:  # a required element's absence is an error
                found[f"{node.rule_prefix}/must-support"] = ("information", "sufficient")
            if node.binding is not None and node.binding[0] in _SEVERITY:
                found[f"{node.rule_prefix}/binding"] = (_SEVERITY[node.binding[0]], "unified")
            for key, severity, _, _ in node.constraints:
                found[key] = (severity, axis)
        return found

    def _finish(self, node: _Element, national_id_system: str | None) -> None:
        """Give each slice its discriminating value; mark the national identifier's slice
        and everything under it as identifying."""
        for child in node.children.values():
            child.identifying = child.identifying or node.identifying
            self._finish(child, national_id_system)
        for sliced in node.slices.values():
            key = sliced.children.get(node.discriminator or "")
            if key is not None:
                sliced.slice_value = key.fixed if key.fixed is not None else key.pattern
            sliced.identifying = node.identifying or (
                national_id_system is not None and sliced.slice_value == national_id_system
            )
            self._finish(sliced, national_id_system)


def _matches(value: Any, pattern: Any) -> bool:
    """Whether a value holds a pattern: objects key by key, arrays item by item."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches(value.get(k), v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else []
        return all(any(_matches(item, p) for item in items) for p in pattern)
    return value == pattern


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        if "coding" in value:
            return ", ".join(_shown(c) for c in value["coding"])
        if "code" in value or "system" in value:
            return f"{value.get('system', '')}|{value.get('code', '')}".lstrip("|")
    return repr(value) if isinstance(value, str) else str(value)


class _Walk:
    """The findings of one resource against one profile."""

    def __init__(self, validator: "Validator", profile: Profile, resource: Resource) -> None:
        self.validator = validator
        self.profile = profile
        self.resource = resource
        self.issues: list[Issue] = []

    def add(
        self,
        node: _Element,
        check: str,
        severity: str,
        code: str,
        path: str,
        message: str,
        axis: str | None = None,
    ) -> None:
        if axis is None:
            axis = "identified" if node.identifying else "correct"
        self.issues.append(
            Issue(severity, code, f"{node.rule_prefix}/{check}", path, message, axis)
        )

    def element(self, node: _Element, parent: Resource, path: str) -> None:
        """Check the children of one occurrence of an element (a JSON object)."""
        for name, child in node.children.items():
            if name.endswith("[x]"):
                key, value = self._choice(child, parent, name[:-3], path)
            else:
                key, value = name, parent.get(name)
            values = value if isinstance(value, list) else ([] if value is None else [value])
            where = f"{path}.{key}"
            self._count(child, len(values), where)
            for i, item in enumerate(values):
                self.occurrence(child, item, f"{where}[{i}]" if isinstance(value, list) else where)
            if child.slices:
                self._slices(child, values, where)

    def _choice(self, node: _Element, parent: Resource, base: str, path: str) -> tuple[str, Any]:
        for key, value in parent.items():
            if key.startswith(base) and key[len(base) : len(base) + 1].isupper():
                kind = key[len(base) :]
                if node.types and not any(t.lower() == kind.lower() for t in node.types):
                    self.add(
                        node,
                        "type",
                        "error",
                        "structure",
                        f"{path}.{key}",
                        f"{base}[x] must be one of {', '.join(node.types)}, not {kind}",
                    )
                return key, value
        return f"{base}[x]", None

    def _count(self, node: _Element, count: int, where: str) -> None:
        if count < node.min:
            message = (
                f"{node.label} is required"
                if node.min == 1
                else f"At least {node.min} of {node.label} are required; there are {count}"
            )
            self.add(node, "min", "error", "required", where, f"{message} ({where})")
        elif count == 0 and node.must_support:
            self.add(
                node,
                "must-support",
                "information",
                "incomplete",
                where,
                f"{node.label} is missing: the national profile asks for it when known ({where})",
                axis="sufficient",
            )
        if node.max is not None and count > node.max:
            self.add(
                node,
                "max",
                "error",
                "structure",
                where,
                f"At most {node.max} of {node.label} allowed; there are {count} ({where})",
            )

    def occurrence(self, node: _Element, value: Any, path: str) -> None:
        """Check one occurrence of an element against its own rules, then its children."""
        if node.fixed is not None and value != node.fixed:
            self.add(
                node,
                "fixed",
                "error",
                "value",
                path,
                f"{path} must be {_shown(node.fixed)}, not {_shown(value)}",
            )
        if node.pattern is not None and not _matches(value, node.pattern):
            self.add(
                node,
                "pattern",
                "error",
                "value",
                path,
                f"{path} must be {_shown(node.pattern)}; it is {_shown(value)}",
            )
        if node.binding is not None:
            self._binding(node, value, path)
        for key, severity, human, compiled in node.constraints:
            try:
                result = compiled(value)
            except Exception as error:  # noqa: BLE001 - a rule the data cannot be read by
                result, human = [False], f"{human} (the rule could not be evaluated: {error})"
            if False in result:
                self.issues.append(
                    Issue(
                        severity,
                        "invariant",
                        key,
                        path,
                        f"{human} ({path})",
                        "identified" if node.identifying else "correct",
                    )
                )
        if isinstance(value, dict) and node.children:
            self.element(node, value, path)

    def _binding(self, node: _Element, value: Any, path: str) -> None:
        strength, value_set = node.binding  # type: ignore[misc]
        terms = self.validator.terminology
        if strength not in _SEVERITY or not terms.knows(value_set):
            return
        codes: list[tuple[Any, Any]]
        if isinstance(value, str):
            codes = [(None, value)]
        elif isinstance(value, dict) and "coding" in value:
            codes = [
                (c.get("system"), c.get("code")) for c in value["coding"] if isinstance(c, dict)
            ]
        elif isinstance(value, dict):
            codes = [(value.get("system"), value.get("code"))]
        else:
            return
        codes = [(s, c) for s, c in codes if isinstance(c, str)]
        # A code the pack cannot decide on (a system it does not hold) is not held against it.
        if any(terms.member(value_set, s, c) is not False for s, c in codes):
            return
        name = self.validator.value_set_name(value_set)
        shown = ", ".join(f"{c!r}" + (f" ({s})" if s else "") for s, c in codes) or "no code"
        self.add(
            node,
            "binding",
            _SEVERITY[strength],
            "code-invalid",
            path,
            f"{shown} is not a code of {name}: use one ({path})",
            axis="unified",
        )

    def _slices(self, node: _Element, values: list[Any], where: str) -> None:
        members: dict[str, list[int]] = {name: [] for name in node.slices}
        for i, item in enumerate(values):
            key = item.get(node.discriminator) if isinstance(item, dict) else None
            for name, sliced in node.slices.items():
                if key is not None and _matches(key, sliced.slice_value):
                    members[name].append(i)
                    break
        for name, sliced in node.slices.items():
            found = members[name]
            label = sliced.short or f"{node.name} {name}"
            if len(found) < sliced.min:
                self.add(
                    sliced,
                    "min",
                    "error",
                    "required",
                    where,
                    f"{label} is required: add {node.name} with {node.discriminator} "
                    f"{_shown(sliced.slice_value)} ({where})",
                )
            elif not found and sliced.must_support:
                self.add(
                    sliced,
                    "must-support",
                    "information",
                    "incomplete",
                    where,
                    f"{label} is missing: the national profile asks for it when known ({where})",
                    axis="sufficient",
                )
            if sliced.max is not None and len(found) > sliced.max:
                self.add(
                    sliced,
                    "max",
                    "error",
                    "structure",
                    where,
                    f"At most {sliced.max} {label} allowed; there are {len(found)} ({where})",
                )
            for i in found:
                self.occurrence(sliced, values[i], f"{where}[{i}]")


_CHECKS = {"citizen-id", "nik", "insurance-card"}


class Validator:
    """Checks resources against the profiles of one pack; build once, use for every write."""

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        self.terminology = Terminology(pack)
        national = pack.national_id_system
        self.profiles = {url: Profile(sd, national) for url, sd in pack.profiles.items()}
        self.by_type = {p.type: p for p in self.profiles.values()}
        # identifier system -> (NamingSystem id, check code, whether it identifies the person)
        self.checks: dict[str, tuple[str, str, bool]] = {}
        for uri, naming in pack.naming_systems.items():
            for extension in naming.get("extension", []):
                if (
                    extension.get("url") == CHECK_EXTENSION
                    and extension.get("valueCode") in _CHECKS
                ):
                    self.checks[uri] = (
                        naming.get("id", uri),
                        extension["valueCode"],
                        uri == national,
                    )

    def rules(self) -> dict[str, tuple[str, str]]:
        """Return every rule of the pack (its profiles' and its identifier checks'), with the
        severity and quality axis of the finding each gives (listed once per validator)."""
        return self._rules

    @cached_property
    def _rules(self) -> dict[str, tuple[str, str]]:
        found = {rule: kind for p in self.profiles.values() for rule, kind in p.rules().items()}
        for naming, code, identifying in self.checks.values():
            found[f"{naming}/{code}"] = ("error", "identified" if identifying else "correct")
        return found

    def value_set_name(self, url: str) -> str:
        value_set = self.pack.value_sets.get(url, {})
        return str(value_set.get("title") or value_set.get("name") or url)

    def profile(self, url: str) -> Profile | None:
        """Return the compiled profile of a canonical URL (a `|version` suffix ignored)."""
        return self.profiles.get(url.partition("|")[0])

    def validate(self, resource: Resource, profile: str | None = None) -> list[Issue]:
        """Return the findings of a resource (already valid against the base model) against
        a profile (by default the pack's profile of its type) and the pack's identifier checks."""
        rtype = resource.get("resourceType", "")
        compiled = self.profile(profile) if profile else self.by_type.get(rtype)
        issues: list[Issue] = []
        if compiled is not None:
            walk = _Walk(self, compiled, resource)
            walk.occurrence(compiled.root, resource, rtype)
            issues = walk.issues
        return issues + self._identifiers(resource, rtype)

    def _identifiers(self, resource: Resource, rtype: str) -> list[Issue]:
        found = []
        for i, identifier in enumerate(resource.get("identifier") or []):
            system = identifier.get("system") if isinstance(identifier, dict) else None
            check = self.checks.get(system) if isinstance(system, str) else None
            value = identifier.get("value") if check else None
            if not check or not isinstance(value, str):
                continue
            naming, code, identifying = check
            at = f"identifier[{i}]"
            if code == "insurance-card":
                results = identifiers.insurance_card(value, at)
            else:
                person = (
                    (resource.get("gender"), resource.get("birthDate"))
                    if rtype == "Patient"
                    else (None, None)
                )
                function = identifiers.citizen_id if code == "citizen-id" else identifiers.nik
                results = function(value, *person, at)
            for finding in results:
                found.append(
                    Issue(
                        "error",
                        "value",
                        f"{naming}/{code}",
                        f"{rtype}.{finding.element}",
                        finding.message,
                        "identified" if identifying else "correct",
                    )
                )
        return found


@dataclass(frozen=True)
class Quality:
    """What a record's findings say on each axis of the national data-quality principle."""

    valid: bool  # no error-level finding
    complete: bool  # every must-support element present
    coded: bool  # every bound element coded in the national code systems
    identified: bool | None  # a Patient: a valid national ID present; other types: None


def quality(resource: Resource, issues: list[Issue], national_id_system: str | None) -> Quality:
    """Summarise a record's findings on the quality axes."""
    identified = None
    if resource.get("resourceType") == "Patient":
        present = any(
            isinstance(i, dict) and i.get("system") == national_id_system and i.get("value")
            for i in resource.get("identifier") or []
        )
        identified = present and not any(i.axis == "identified" for i in issues)
    return Quality(
        valid=not any(i.severity == "error" for i in issues),
        complete=not any(i.axis == "sufficient" for i in issues),
        coded=not any(i.axis == "unified" for i in issues),
        identified=identified,
    )
