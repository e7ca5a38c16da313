"""A country pack: the StructureDefinitions, NamingSystems (and, to come, CodeSystems and
ValueSets) of one country, as FHIR JSON files in `fhir_profiles/<country>/`. A pack is data:
adding a country adds a folder, not code."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKS = Path(__file__).parent
Resource = dict[str, Any]


class PackError(ValueError):
    """A pack that cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Pack:
    """The conformance resources of one country, by type and then by canonical URL or id."""

    country: str
    profiles: dict[str, Resource] = field(default_factory=dict)  # StructureDefinition by url
    naming_systems: dict[str, Resource] = field(default_factory=dict)  # by preferred uniqueId

    def naming_system(self, uri: str) -> Resource | None:
        """Return the NamingSystem of an identifier system, if the pack has one."""
        return self.naming_systems.get(uri)


def load(country: str, folder: Path = PACKS) -> Pack:
    """Read the pack of a country (its folder's name, e.g. "vn")."""
    where = folder / country
    if not where.is_dir():
        raise PackError(f"No country pack {country!r} in {folder}")
    pack = Pack(country)
    for path in sorted(where.glob("*.json")):
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise PackError(f"{path.name}: not JSON: {error}") from None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind == "StructureDefinition":
            pack.profiles[str(resource["url"])] = resource
        elif kind == "NamingSystem":
            preferred = [u for u in resource.get("uniqueId", []) if u.get("preferred")]
            if len(preferred) != 1:
                raise PackError(f"{path.name}: a NamingSystem needs one preferred uniqueId")
            pack.naming_systems[str(preferred[0]["value"])] = resource
        else:
            raise PackError(f"{path.name}: a pack holds no {kind or 'non-resource'}")
    return pack
