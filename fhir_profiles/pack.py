"""A country pack: the StructureDefinitions, NamingSystems, CodeSystems and ValueSets of one
country, as FHIR JSON files in `fhir_profiles/<country>/`, on top of the international code
systems and value sets every pack shares (`fhir_profiles/common/`). A pack is data: adding a
country adds a folder, not code."""

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PACKS = Path(__file__).parent
COMMON = PACKS / "common"
Resource = dict[str, Any]

# A pack's data that is not FHIR: the national rollout roadmap (hub/reporting/roadmap.py).
ROADMAP_FILE = "roadmap.json"
ID_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
NATIONAL_ID_TYPE = "NI"  # v2-0203 "National unique individual identifier"


class PackError(ValueError):
    """A pack that cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Pack:
    """The conformance resources of one country, by type and then by canonical URL or id."""

    country: str
    profiles: dict[str, Resource] = field(default_factory=dict)  # StructureDefinition by url
    naming_systems: dict[str, Resource] = field(default_factory=dict)  # by preferred uniqueId
    code_systems: dict[str, Resource] = field(default_factory=dict)  # by url
    value_sets: dict[str, Resource] = field(default_factory=dict)  # by url
    measures: dict[str, Resource] = field(default_factory=dict)  # the reports' Measures, by url
    roadmap: dict[str, Any] = field(default_factory=dict)  # roadmap.json, as read
    _by_type: dict[str, Resource] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def naming_system(self, uri: str) -> Resource | None:
        """Return the NamingSystem of an identifier system, if the pack has one."""
        return self.naming_systems.get(uri)

    def profile_for(self, resource_type: str) -> Resource | None:
        """Return the pack's profile of a resource type (e.g. "Patient"), if it has one."""
        if not self._by_type:
            self._by_type.update(profiles_by_type(self))
        return self._by_type.get(resource_type)

    @property
    def national_id_system(self) -> str | None:
        """Return the identifier system of the national ID (the NamingSystem typed `NI`)."""
        found = [uri for uri, naming in self.naming_systems.items() if _is_national_id(naming)]
        return found[0] if found else None


def load(country: str, folder: Path = PACKS, common: Path | None = COMMON) -> Pack:
    """Read the pack of a country (its folder's name, e.g. "vn") over the common files; a
    country's file replaces a common one of the same url."""
    where = folder / country
    if not where.is_dir() or where == common:
        raise PackError(f"No country pack {country!r} in {folder}")
    pack = Pack(country)
    if common is not None:
        _read_folder(pack, common)
    _read_folder(pack, where)
    pack._by_type.update(profiles_by_type(pack))
    national = [u for u, n in pack.naming_systems.items() if _is_national_id(n)]
    if len(national) > 1:
        raise PackError(f"{country}: two NamingSystems of national ID type NI: {national}")
    return pack


@cache
def pack_of(country: str) -> Pack:
    """Return the pack of a country, read once per process."""
    return load(country)


def _read_folder(pack: Pack, where: Path) -> None:
    seen: dict[str, str] = {}  # canonical -> file, within this folder
    for path in sorted(where.glob("*.json")):
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise PackError(f"{path.name}: not JSON: {error}") from None
        if path.name == ROADMAP_FILE:
            pack.roadmap.update(resource)
            continue
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        index = _index_of(pack, kind)
        if index is None:
            raise PackError(f"{path.name}: a pack holds no {kind or 'non-resource'}")
        if kind == "NamingSystem":
            preferred = [u for u in resource.get("uniqueId", []) if u.get("preferred")]
            if len(preferred) != 1:
                raise PackError(f"{path.name}: a NamingSystem needs one preferred uniqueId")
            key = preferred[0].get("value")
        else:
            key = resource.get("url")
        if not isinstance(key, str) or not key:
            raise PackError(f"{path.name}: a {kind} needs a url")
        if key in seen:
            raise PackError(f"{path.name}: {key} is also the url of {seen[key]}")
        seen[key] = path.name
        index[key] = resource


def _index_of(pack: Pack, kind: object) -> dict[str, Resource] | None:
    return {
        "StructureDefinition": pack.profiles,
        "NamingSystem": pack.naming_systems,
        "CodeSystem": pack.code_systems,
        "ValueSet": pack.value_sets,
        "Measure": pack.measures,
    }.get(str(kind))


def profiles_by_type(pack: Pack) -> dict[str, Resource]:
    """Return the pack's profiles of resources by the type they constrain; one per type."""
    by_type: dict[str, Resource] = {}
    for url, profile in pack.profiles.items():
        # Extensions and data-type profiles constrain no resource type.
        if profile.get("kind") != "resource":
            continue
        kind = str(profile.get("type"))
        if kind in by_type:
            raise PackError(
                f"{pack.country}: two profiles of {kind}: {by_type[kind]['url']} and {url}"
            )
        by_type[kind] = profile
    return by_type


def _is_national_id(naming: Resource) -> bool:
    codings = (naming.get("type") or {}).get("coding") or []
    return any(
        c.get("code") == NATIONAL_ID_TYPE and c.get("system") in (None, ID_TYPE_SYSTEM)
        for c in codings
        if isinstance(c, dict)
    )
