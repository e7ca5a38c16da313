"""The facility registry: the ministry's CSV of health facilities, kept in the hub as one
Organization (and its Location) per facility.

The CSV has a header line and the columns code,name,province,level,type,ownership (others,
such as the demo's `format`, are ignored). A province is given by its code or its name, with
or without accents ("Thanh Hóa", "thanh hoa", "38"); a level, type or ownership by its code
or its Vietnamese display, from the country pack's CodeSystems.

An Organization carries the province's display in `address.state` and its code in the
extension PROVINCE_EXTENSION (a valueCoding of the pack's province CodeSystem) on that
address, so reports group by code while people read the name.
"""

import csv
import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_profiles.pack import Pack, pack_of
from hub.fhir.outcome import HubError
from hub.fhir.validate import validate_resource
from hub.search.extract import Token, param_keys
from hub.search.registry import registry
from hub.search.values import fold
from hub.store.resources import ResourceStore, Stored, Write, key
from hub.store.scope import Scope

Resource = dict[str, Any]

FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
PROVINCE_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/province"
LEVEL_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/facility-level"
TYPE_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/facility-type"
OWNERSHIP_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem/facility-ownership"
PROVINCE_EXTENSION = "https://ehrhub.org/fhir/StructureDefinition/province"
KIND_SYSTEMS = (LEVEL_SYSTEM, TYPE_SYSTEM, OWNERSHIP_SYSTEM)
COLUMNS = ("code", "name", "province", "level", "type", "ownership")
# One transaction per this many facilities: big enough to import fast, small enough that a
# transaction stays well inside the database's limits.
BATCH = 500
# What a province's name may start with that is not part of the name itself.
_PROVINCE_PREFIXES = ("thanh pho ", "tinh ", "tp. ", "tp ")


@dataclass(frozen=True)
class Facility:
    """One facility of the registry, its province and kinds as codes of the pack."""

    code: str
    name: str
    province: str
    level: str
    type: str
    ownership: str
    line: int = 0  # its line in the CSV, to name in a refusal

    @property
    def id(self) -> str:
        """Return the id of the facility's Organization and Location when the registry
        creates them."""
        return f"facility-{self.code}"


@dataclass(frozen=True)
class Refusal:
    """A line of the CSV not imported, and why."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass
class Report:
    """What an import did, by facility code."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def summary(self) -> str:
        """Return the counts as one line."""
        return (
            f"added {len(self.added)}, changed {len(self.changed)}, "
            f"unchanged {len(self.unchanged)}, refused {len(self.refused)}"
        )

    def as_json(self) -> dict[str, Any]:
        """Return the report as JSON."""
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "refused": [{"line": r.line, "problem": r.problem} for r in self.refused],
        }


def _codes(code_system: Resource, *, province: bool = False) -> dict[str, str]:
    """Return a CodeSystem's codes by their folded code, display, other names (designations)
    and, for a province, its full name (the definition's start)."""
    found: dict[str, str] = {}
    for concept in code_system.get("concept") or ():
        code = concept["code"]
        names = [code, concept.get("display") or ""]
        names += [d.get("value") or "" for d in concept.get("designation") or ()]
        if province:
            names.append((concept.get("definition") or "").split(" (")[0])
        for name in filter(None, map(fold, names)):
            found[name] = code
            if province:
                found[_bare_province(name)] = code
    return found


def _bare_province(folded: str) -> str:
    for prefix in _PROVINCE_PREFIXES:
        if folded.startswith(prefix):
            return folded.removeprefix(prefix)
    return folded


@dataclass(frozen=True)
class Vocabulary:
    """The codes a registry line may use, from a country pack."""

    provinces: dict[str, str]
    kinds: dict[str, dict[str, str]]  # column -> folded name -> code
    displays: dict[tuple[str, str], str]  # (system, code) -> display

    @classmethod
    def of(cls, pack: Pack) -> "Vocabulary":
        """Read the vocabulary of a pack; raise KeyError naming a CodeSystem it lacks."""
        systems = dict(zip(("level", "type", "ownership"), KIND_SYSTEMS, strict=True))
        for url in (PROVINCE_SYSTEM, *KIND_SYSTEMS):
            if url not in pack.code_systems:
                raise KeyError(f"the {pack.country} pack has no CodeSystem {url}")
        displays = {
            (url, c["code"]): c.get("display") or c["code"]
            for url in (PROVINCE_SYSTEM, *KIND_SYSTEMS)
            for c in pack.code_systems[url].get("concept") or ()
        }
        return cls(
            provinces=_codes(pack.code_systems[PROVINCE_SYSTEM], province=True),
            kinds={col: _codes(pack.code_systems[url]) for col, url in systems.items()},
            displays=displays,
        )

    def province(self, given: str) -> str | None:
        """Return the code of a province given by code or name, or None."""
        folded = fold(given)
        if folded.isdigit() and len(folded) == 1:
            folded = "0" + folded  # a spreadsheet ate the leading zero
        return self.provinces.get(folded) or self.provinces.get(_bare_province(folded))


@functools.cache
def _vocabulary_of(country: str) -> Vocabulary:
    return Vocabulary.of(pack_of(country))


def vocabulary(pack: Pack | None) -> Vocabulary:
    """Return the vocabulary of a pack (by default Vietnam's, read once)."""
    return Vocabulary.of(pack) if pack is not None else _vocabulary_of("vn")


def parse_csv(text: str, pack: Pack | None = None) -> tuple[list[Facility], list[Refusal]]:
    """Read the registry CSV; return its facilities and the lines refused, each with why."""
    words = vocabulary(pack)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [fold(h) for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [Refusal(1, f"the header lacks the column(s) {', '.join(missing)}")]
    where = {c: header.index(c) for c in COLUMNS}
    facilities: list[Facility] = []
    refusals: list[Refusal] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        cells = {c: (row[i].strip() if i < len(row) else "") for c, i in where.items()}
        facility, problem = _facility(cells, line, words)
        if facility is None:
            refusals.append(Refusal(line, problem))
        elif facility.code in first_line:
            refusals.append(
                Refusal(line, f"code {facility.code} is also on line {first_line[facility.code]}")
            )
        else:
            first_line[facility.code] = line
            facilities.append(facility)
    return facilities, refusals


def _facility(
    cells: Mapping[str, str], line: int, words: Vocabulary
) -> tuple[Facility | None, str]:
    """Return the facility of one line's cells, or None and what is wrong with them."""
    code = cells["code"]
    if not code:
        return None, "the code is missing"
    if not (len(code) == 5 and code.isascii() and code.isdigit()):
        return None, f"code {code!r} is not 5 digits"
    if not cells["name"]:
        return None, f"facility {code} has no name"
    province = words.province(cells["province"])
    if province is None:
        return None, f"facility {code}: unknown province {cells['province']!r}"
    kinds: dict[str, str] = {}
    for column in ("level", "type", "ownership"):
        found = words.kinds[column].get(fold(cells[column]))
        if found is None:
            known = ", ".join(sorted(set(words.kinds[column].values())))
            return None, f"facility {code}: unknown {column} {cells[column]!r} (one of: {known})"
        kinds[column] = found
    facility = Facility(code, cells["name"], province, line=line, **kinds)
    return facility, ""


def _coding(system: str, code: str, words: Vocabulary) -> Resource:
    coding = {"system": system, "code": code}
    display = words.displays.get((system, code))
    return coding | ({"display": display} if display else {})


def address(facility: Facility, pack: Pack | None = None) -> Resource:
    """Return the facility's address: its province's name in `state`, its code in the
    PROVINCE_EXTENSION."""
    province = _coding(PROVINCE_SYSTEM, facility.province, vocabulary(pack))
    return {
        "extension": [{"url": PROVINCE_EXTENSION, "valueCoding": province}],
        "state": province.get("display", facility.province),
        "country": "VN",
    }


def organization(facility: Facility, pack: Pack | None = None) -> Resource:
    """Return the registry's Organization of a facility: code, name, kinds, province."""
    words = vocabulary(pack)
    kinds = zip(KIND_SYSTEMS, (facility.level, facility.type, facility.ownership), strict=True)
    return {
        "resourceType": "Organization",
        "id": facility.id,
        "identifier": [{"system": FACILITY_SYSTEM, "value": facility.code}],
        "active": True,
        "type": [{"coding": [_coding(system, code, words)]} for system, code in kinds],
        "name": facility.name,
        "address": [address(facility, pack)],
    }


def location(facility: Facility, org_ref: str, pack: Pack | None = None) -> Resource:
    """Return the facility's Location: the place the Organization `org_ref` runs."""
    return {
        "resourceType": "Location",
        "id": facility.id,
        "identifier": [{"system": FACILITY_SYSTEM, "value": facility.code}],
        "status": "active",
        "name": facility.name,
        "mode": "instance",
        "address": address(facility, pack),
        "managingOrganization": {"reference": org_ref},
    }


def merged(stored: Stored | None, registry_record: Resource) -> Resource:
    """Return the current resource with the registry's elements replaced and the rest kept
    (what an admin added through the API survives an import)."""
    if stored is None:
        return registry_record
    current = stored.resource
    result = {k: v for k, v in current.items() if k != "meta"}
    for name, value in registry_record.items():
        if name == "id":
            continue
        if name == "identifier":
            others = [
                i for i in current.get("identifier") or () if i.get("system") != FACILITY_SYSTEM
            ]
            value = value + others
        elif name == "type":
            others = [t for t in current.get("type") or () if not _is_kind(t)]
            value = value + others
        result[name] = value
    return result


def _is_kind(concept: Resource) -> bool:
    return any(c.get("system") in KIND_SYSTEMS for c in concept.get("coding") or ())


def identifier_keys(resource_type: str, codes: Iterable[str]) -> list[str]:
    """Return the search keys of resources of a type with these facility identifiers."""
    param = registry().params(resource_type)["identifier"]
    return list(param_keys(resource_type, param, [Token(FACILITY_SYSTEM, c) for c in codes]))


async def registered(
    store: ResourceStore, resource_type: str, codes: list[str]
) -> dict[str, Stored]:
    """Return the current resources of a type that carry these facility codes, by code."""
    found = await store.find({"_hub.sv": {"$in": identifier_keys(resource_type, codes)}}, Scope())
    by_code: dict[str, Stored] = {}
    for stored in found:
        for ident in stored.resource.get("identifier") or ():
            if ident.get("system") == FACILITY_SYSTEM and ident.get("value") in codes:
                by_code.setdefault(ident["value"], stored)
    return by_code


async def import_facilities(
    store: ResourceStore,
    facilities: list[Facility],
    when: datetime | None = None,
    pack: Pack | None = None,
) -> Report:
    """Write each facility's Organization and Location where new or changed, one transaction
    per BATCH facilities, attributed to the facility; report what was added and changed."""
    report = Report()
    for start in range(0, len(facilities), BATCH):
        batch = facilities[start : start + BATCH]
        writes = await _writes(store, batch, report, pack)
        if writes:
            async with store.mongo.transaction() as session:
                await store.write(writes, session, when)
            store.committed({"Organization", "Location"})
    return report


async def _writes(
    store: ResourceStore, batch: list[Facility], report: Report, pack: Pack | None
) -> list[Write]:
    """Return the writes of a batch, noting in the report what each facility needs."""
    codes = [f.code for f in batch]
    orgs = await registered(store, "Organization", codes)
    places = await registered(store, "Location", codes)
    # A record the registry made and someone deleted: its next version revives it.
    keys = [key(t, f.id) for f in batch for t in ("Organization", "Location")]
    deleted = {k: s for k, s in (await store.currents(keys, Scope())).items() if s.deleted}
    writes: list[Write] = []
    for facility in batch:
        old_org = orgs.get(facility.code)
        old_place = places.get(facility.code)
        org_id = old_org.id if old_org else facility.id
        place_id = old_place.id if old_place else facility.id
        org = merged(old_org, organization(facility, pack) | {"id": org_id})
        new_place = location(facility, f"Organization/{org_id}", pack) | {"id": place_id}
        place = merged(old_place, new_place)
        old_org = old_org or deleted.get(key("Organization", org_id))
        old_place = old_place or deleted.get(key("Location", place_id))
        try:
            validate_resource(org)
            validate_resource(place)
        except HubError as error:  # an admin's edit the registry's elements cannot join
            report.refused.append(Refusal(facility.line, f"facility {facility.code}: {error}"))
            continue
        changes = [
            Write(kind, rid, new, old, "PUT", facility=facility.code)
            for kind, rid, new, old in (
                ("Organization", org_id, org, old_org),
                ("Location", place_id, place, old_place),
            )
            if old is None or old.deleted or _differs(old.resource, new)
        ]
        writes += changes
        if old_org is None or old_org.deleted:
            report.added.append(facility.code)
        elif changes:
            report.changed.append(facility.code)
        else:
            report.unchanged.append(facility.code)
    return writes


def _differs(old: Resource, new: Resource) -> bool:
    return {k: v for k, v in old.items() if k != "meta"} != {
        k: v for k, v in new.items() if k != "meta"
    }
