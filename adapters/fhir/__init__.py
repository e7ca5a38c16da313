"""FHIR R4 from an EMR that already speaks it, passed through to the hub under the sending
facility's attribution.

Input: a JSON file holding a Bundle (transaction, batch, collection, searchset, ...) or one
resource, or an NDJSON file (one resource per line, as FHIR Bulk Data exports write them).
`parse` yields one transaction Bundle per input Bundle, and one per `group_size` NDJSON lines,
read line by line. Each resource:
- gets meta.source (the facility), a meta.tag with the facility code, and the facility's
  Organization as Patient.managingOrganization, Encounter.serviceProvider or
  Observation/DiagnosticReport.performer when the sender left that empty (`attribution`);
- is written by `PUT Type?identifier=...` on an identifier `facility.system("fhir-id") | its
  original id` added to it, or, when it has no id, on its own first identifier (see
  `group._condition` for why the facility-scoped key comes first);
- is stored under an id derived from the facility and its original id (`group.hub_id`), so a
  reference `Type/id` to a resource of another NDJSON group (or an earlier file) resolves.
References between resources of one group point at their entries' fullUrls.
Entries without a resource (GET, DELETE) and searchset `outcome` entries are left out.
"""

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from adapters.base import Facility, Output, Rejection
from adapters.fhir.group import Item, transaction

__all__ = ["parse"]

DEFAULT_GROUP_SIZE = 100


def parse(
    source: str | Path | Iterable[str | Path],
    facility: Facility,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> Iterator[Output]:
    """Yield transaction Bundles (or Rejections) for FHIR JSON or NDJSON files."""
    paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    for path in paths:
        if path.is_dir():
            yield from parse(sorted(p for p in path.iterdir() if p.is_file()), facility, group_size)
        elif path.suffix.lower() in (".ndjson", ".jsonl"):
            yield from _ndjson(path, facility, group_size)
        else:
            yield _bundle(path, facility)


def _bundle(path: Path, facility: Facility) -> Output:
    """Return the transaction passing through a JSON Bundle or resource."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        return Rejection(path.name, f"not a FHIR JSON file: {e}")
    if not isinstance(data, dict):
        return Rejection(path.name, "not a FHIR resource: the file holds no JSON object")
    if data.get("resourceType") != "Bundle":
        return transaction([Item(path.name, data)], facility, path.name)
    items = []
    for i, entry in enumerate(data.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if (entry.get("search") or {}).get("mode") == "outcome":
            continue
        full_url = entry.get("fullUrl")
        where = f"{path.name} Bundle.entry[{i}]"
        items.append(Item(where, resource, full_url if isinstance(full_url, str) else None))
    return transaction(items, facility, path.name)


def _ndjson(path: Path, facility: Facility, group_size: int) -> Iterator[Output]:
    """Yield one transaction per `group_size` resources of an NDJSON file, read line by line."""
    with path.open(encoding="utf-8-sig") as lines:
        numbered = ((n, line) for n, line in enumerate(lines, 1) if line.strip())
        while group := list(islice(numbered, group_size)):
            items, rejected = [], []
            for n, line in group:
                where = f"{path.name} line {n}"
                resource = _resource(line)
                if isinstance(resource, dict):
                    items.append(Item(where, resource))
                else:
                    rejected.append(Rejection(where, f"not a FHIR resource: {resource}"))
            yield from rejected
            if items:
                yield transaction(
                    items, facility, f"{path.name} lines {group[0][0]}-{group[-1][0]}"
                )


def _resource(line: str) -> dict[str, Any] | str:
    """Return the resource on an NDJSON line, or why there is none."""
    try:
        found = json.loads(line)
    except ValueError as e:
        return f"invalid JSON ({e})"
    return found if isinstance(found, dict) else "the line holds no JSON object"
