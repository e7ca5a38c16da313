"""Generate `r4-rules.json`: the JSON kind of every primitive element and the codes of every
required binding on a `code` element, for every FHIR R4 resource type and complex datatype.

Source: the FHIR R4 (4.0.1) core definitions by HL7, npm package `hl7.fhir.r4.examples` 4.0.1
(StructureDefinition-*, ValueSet-*, CodeSystem-*), published under CC0
(https://hl7.org/fhir/R4/license.html). Run by hand when the source changes:

    cd /tmp && npm pack hl7.fhir.r4.examples@4.0.1 && mkdir r4ex \
        && tar xzf hl7.fhir.r4.examples-4.0.1.tgz -C r4ex
    .venv/bin/python fhir_profiles/base/generate.py /tmp/r4ex/package

The output maps each table (a type such as `HumanName`, or a BackboneElement by its path such
as `Observation.component`) to its elements by JSON name (choice elements by each typed name)
and each element to a rule: a primitive kind (`boolean`, `integer`, `positiveInt`,
`unsignedInt`, `decimal`, `string`), `=<ValueSet id>` for a code with a required binding, a
table name for a complex element, or `Resource` for a resource. ValueSets that cannot be
expanded here are listed under `unexpanded`; their elements are checked as strings only.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("r4-rules.json")
SOURCE = "HL7 FHIR R4 4.0.1 definitions (npm hl7.fhir.r4.examples 4.0.1), CC0"

# FHIR primitive types by the JSON kind that carries them.
PRIMITIVE_KINDS = {
    "boolean": "boolean",
    "integer": "integer",
    "positiveInt": "positiveInt",
    "unsignedInt": "unsignedInt",
    "decimal": "decimal",
    **dict.fromkeys(
        "string code id uri url canonical oid uuid markdown base64Binary date dateTime instant "
        "time xhtml".split(),
        "string",
    ),
    # Element.id, Extension.url and the like are typed with FHIRPath system types.
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
}
# Types whose elements are defined inline, in a table named by the element's path.
INLINE = {"BackboneElement", "Element"}
# Filters on a code hierarchy that select a concept's descendants.
INCLUDES_ROOT = {"is-a": True, "descendent-of": False}


# Codes in the order their ValueSet or CodeSystem defines them (a dict as an ordered set).
Selected = dict[str, None]


class Unexpandable(Exception):
    """A ValueSet whose complete set of codes cannot be worked out from the package."""


class Definitions:
    """The StructureDefinitions, ValueSets and CodeSystems of the package."""

    def __init__(self, package: Path) -> None:
        self.structures: dict[str, dict[str, Any]] = {}
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        for path in package.glob("*.json"):
            kind = path.name.split("-", 1)[0]
            if kind not in ("StructureDefinition", "ValueSet", "CodeSystem"):
                continue
            definition = json.loads(path.read_text())
            if kind == "StructureDefinition":
                self.structures[definition["id"]] = definition
            elif kind == "ValueSet":
                self.value_sets[definition["url"]] = definition
            else:
                self.code_systems[definition["url"]] = definition

    def table_types(self) -> Iterator[dict[str, Any]]:
        """Yield the concrete resource types and complex datatypes of the base specification."""
        for definition in self.structures.values():
            if (
                definition.get("derivation") == "specialization"
                and definition["kind"] in ("resource", "complex-type")
                and not definition.get("abstract")
            ):
                yield definition

    def base_type(self, code: str) -> str:
        """Return the type a type code's table is named by (`Age` is a constrained `Quantity`)."""
        definition = self.structures.get(code)
        if definition is None or definition.get("derivation") != "constraint":
            return code
        return str(definition["type"])


def choice_names(name: str, types: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Yield (JSON name, type code) for an element, one per type of a choice element."""
    if not name.endswith("[x]"):
        yield name, types[0]["code"]
        return
    for type_ in types:
        code = type_["code"]
        yield name[:-3] + code[0].upper() + code[1:], code


def element_rule(element: dict[str, Any], code: str, defs: Definitions, codes: "Codes") -> str:
    """Return the rule of one (typed) element."""
    if "contentReference" in element:
        return str(element["contentReference"]).lstrip("#")
    if code in INLINE:
        return str(element["path"])
    if code == "Resource":
        return "Resource"
    kind = PRIMITIVE_KINDS.get(code)
    if kind is None:
        return defs.base_type(code)
    binding = element.get("binding", {})
    if code == "code" and binding.get("strength") == "required" and "valueSet" in binding:
        value_set = codes.expand(binding["valueSet"].split("|")[0])
        if value_set is not None:
            return "=" + value_set
    return kind


def tables_of(
    definition: dict[str, Any], defs: Definitions, codes: "Codes"
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield (table name, {JSON name: rule}) for a type and each of its BackboneElements."""
    tables: dict[str, dict[str, str]] = {definition["type"]: {}}
    for element in definition["snapshot"]["element"][1:]:
        parent, _, name = element["path"].rpartition(".")
        types = element.get("type") or [{"code": "Element"}]  # contentReference has no type
        for json_name, code in choice_names(name, types):
            rule = element_rule(element, code, defs, codes)
            tables.setdefault(parent, {})[json_name] = rule
            if code in INLINE and "contentReference" not in element:
                tables.setdefault(element["path"], {})
    yield from tables.items()


class Codes:
    """Expansions of the ValueSets bound to code elements, by ValueSet id."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.expanded: dict[str, dict[str, Any]] = {}
        self.unexpanded: dict[str, str] = {}

    def expand(self, url: str) -> str | None:
        """Return the id under which the ValueSet's codes are kept, or None if unexpandable."""
        value_set = self.defs.value_sets.get(url)
        if value_set is None:
            self.unexpanded[url] = "not in the package"
            return None
        key = str(value_set["id"])
        if key in self.expanded:
            return key
        if url in self.unexpanded:
            return None
        try:
            codes = self.codes_of(value_set)
        except Unexpandable as reason:
            self.unexpanded[url] = str(reason)
            return None
        self.expanded[key] = {
            "name": value_set.get("name", key),
            "url": url,
            "codes": list(codes),
        }
        return key

    def codes_of(self, value_set: dict[str, Any]) -> Selected:
        """Return every code a ValueSet's compose selects, in the order it defines them."""
        compose = value_set.get("compose")
        if not compose:
            raise Unexpandable("no compose")
        codes: Selected = {}
        for include in compose.get("include", []):
            codes |= self.included(include)
        for exclude in compose.get("exclude", []):
            excluded = self.included(exclude)
            codes = {code: None for code in codes if code not in excluded}
        if not codes:
            raise Unexpandable("no codes")
        return codes

    def included(self, include: dict[str, Any]) -> Selected:
        """Return the codes one compose.include (or exclude) selects."""
        selected: Selected | None = None
        if "system" in include:
            if "concept" in include:
                selected = {c["code"]: None for c in include["concept"]}
            else:
                selected = self.system_codes(include["system"], include.get("filter", []))
        for url in include.get("valueSet", []):
            value_set = self.defs.value_sets.get(url.split("|")[0])
            if value_set is None:
                raise Unexpandable(f"includes {url}, not in the package")
            codes = self.codes_of(value_set)
            if selected is not None:
                codes = {code: None for code in selected if code in codes}
            selected = codes
        if selected is None:
            raise Unexpandable("an include with neither system nor valueSet")
        return selected

    def system_codes(self, url: str, filters: list[dict[str, Any]]) -> Selected:
        """Return the codes of a whole CodeSystem, or of the hierarchy a simple filter selects."""
        system = self.defs.code_systems.get(url)
        if system is None:
            raise Unexpandable(f"code system {url} is not in the package")
        if system.get("content") != "complete":
            raise Unexpandable(f"code system {url} is {system.get('content')}, not complete")
        concepts = system.get("concept", [])
        for filter_ in filters:
            op = filter_.get("op")
            if filter_.get("property") != "concept" or op not in INCLUDES_ROOT:
                raise Unexpandable(f"filter {filter_} on {url}")
            root = find_concept(concepts, filter_["value"])
            if root is None:
                raise Unexpandable(f"filter on {filter_['value']}, not a concept of {url}")
            concepts = [root] if INCLUDES_ROOT[op] else root.get("concept", [])
        return dict.fromkeys(all_codes(concepts))


def find_concept(concepts: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    """Return the concept with a code anywhere in a concept hierarchy."""
    for concept in concepts:
        if concept["code"] == code:
            return concept
        found = find_concept(concept.get("concept", []), code)
        if found is not None:
            return found
    return None


def all_codes(concepts: list[dict[str, Any]]) -> Iterator[str]:
    """Yield every code of a concept hierarchy."""
    for concept in concepts:
        yield concept["code"]
        yield from all_codes(concept.get("concept", []))


def generate(package: Path) -> dict[str, Any]:
    """Return the rules of every resource type and complex datatype in the package."""
    defs = Definitions(package)
    codes = Codes(defs)
    tables: dict[str, dict[str, str]] = {}
    resources = []
    for definition in sorted(defs.table_types(), key=lambda d: d["type"]):
        if definition["kind"] == "resource":
            resources.append(definition["type"])
        tables.update(tables_of(definition, defs, codes))
    return {
        "source": SOURCE,
        "resources": resources,
        "tables": tables,
        "valueSets": dict(sorted(codes.expanded.items())),
        "unexpanded": dict(sorted(codes.unexpanded.items())),
    }


def main() -> None:
    """Write r4-rules.json from the package directory named on the command line."""
    rules = generate(Path(sys.argv[1]))
    OUTPUT.write_text(json.dumps(rules, separators=(",", ":"), ensure_ascii=False) + "\n")
    elements = sum(len(table) for table in rules["tables"].values())
    print(f"{OUTPUT}: {len(rules['tables'])} tables, {elements} elements")
    print(f"{len(rules['valueSets'])} ValueSets expanded; not expanded:")
    for url, reason in rules["unexpanded"].items():
        print(f"  {url}: {reason}")


if __name__ == "__main__":
    main()
