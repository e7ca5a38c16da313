"""CSV exports of a hospital information system (patients, encounters, diagnoses, lab
results, ...) to FHIR R4 transaction Bundles, mapped by a file the hospital edits, not by code.

The mapping file (TOML, `mapping.py`; a worked example in `example/` and in
docs/adapters/csv.md) names, per CSV file, the resource its rows become, the column holding
each row's own key, column -> FHIR element with simple conversions, and how rows link to rows
of other files. `parse` yields one Bundle per row of the first (patients) file, holding that
patient and every row of the other files that links to it, directly or through another row
(a diagnosis through its encounter). Each resource is written by `PUT Type?identifier=
facility.system(kind)|key`, so an export sent twice changes nothing and a corrected row
updates. A row that cannot be mapped is a Rejection naming its file, line and column.
The files need not be sorted (see `rows`).
"""

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from adapters.base import (
    BundleBuilder,
    Facility,
    Output,
    Rejection,
    Resource,
    identifier,
    identifier_query,
)
from adapters.csv import rows
from adapters.csv.elements import pruned, put
from adapters.csv.mapping import CsvMapping, MappingFileError, Table, load
from adapters.fhir.attribution import attribute

__all__ = ["CsvMapping", "MappingFileError", "load", "parse"]


class RowError(ValueError):
    """A row that cannot be mapped, and the column at fault."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"column {column}: {reason}")


def parse(
    source: str | Path | Iterable[str | Path],
    mapping: str | Path | CsvMapping,
    facility: Facility,
) -> Iterator[Output]:
    """Yield one transaction Bundle per patient of a CSV export (a folder, or its files), or
    Rejections of the rows that cannot be mapped."""
    found = mapping if isinstance(mapping, CsvMapping) else load(mapping)
    files = _files(source)
    missing = [t.file for t in found.tables if t.file not in files]
    if missing:
        yield Rejection(str(source), f"the export has no file {', '.join(missing)}")
        return
    with rows.index() as index:
        yield from _index(index, found, files)
        patients = found.patients
        for line, row in rows.read(files[patients.file], found):
            yield from _patient(index, found, facility, line, row)
        for position, line, key in index.orphans():
            table = found.tables[position]
            column = next(link.column for link in table.links if link.column)
            yield Rejection(
                f"{table.file} line {line}",
                f"column {column}: no patient with key '{key}' in {patients.file}",
            )


def _files(source: str | Path | Iterable[str | Path]) -> dict[str, Path]:
    """Return the export's files by name."""
    if isinstance(source, str | Path):
        folder = Path(source)
        return {p.name: p for p in folder.iterdir()} if folder.is_dir() else {folder.name: folder}
    return {Path(p).name: Path(p) for p in source}


def _index(index: rows.Index, mapping: CsvMapping, files: Mapping[str, Path]) -> Iterator[Output]:
    """Read every file but the patients' into the index, rejecting rows linking nowhere."""
    root = mapping.patients.name
    for position, table in enumerate(mapping.tables[1:], 1):
        for line, row in rows.read(files[table.file], mapping):
            try:
                patient = _owner(index, table, row, root)
            except RowError as e:
                yield Rejection(f"{table.file} line {line}", str(e))
                continue
            index.add(table, position, patient, line, row)


def _owner(index: rows.Index, table: Table, row: rows.Row, root: str) -> str:
    """Return the key of the patient a row belongs to, through its links."""
    for link in sorted(table.links, key=lambda link: link.table != root):
        if link.column is None:
            continue
        value = (row.get(link.column) or "").strip()
        if not value:
            raise RowError(link.column, f"is empty: the row links to {link.table} by it")
        if link.table == root:
            return value
        owner = index.owner(link.table, value)
        if owner is None:
            raise RowError(link.column, f"no row of {link.table} has the key '{value}'")
        return owner
    raise RowError("?", "the row links to no patient")  # the mapping check prevents this


def _patient(
    index: rows.Index, mapping: CsvMapping, facility: Facility, line: int, row: rows.Row
) -> Iterator[Output]:
    """Yield the Bundle of one patient row and its linked rows, after any rejected rows."""
    builder = BundleBuilder(facility)
    organization = builder.organization()
    urls: dict[tuple[str, str], str] = {}
    patients = mapping.patients
    try:
        _add(builder, patients, row, organization, urls)
    except RowError as e:
        yield Rejection(f"{patients.file} line {line}", str(e))
        for position, child_line, _ in index.rows_of(patients.key_of(row)):
            child = mapping.tables[position]
            yield Rejection(
                f"{child.file} line {child_line}",
                f"its patient ({patients.file} line {line}) was rejected",
            )
        return
    for position, child_line, child_row in index.rows_of(patients.key_of(row)):
        table = mapping.tables[position]
        try:
            _add(builder, table, child_row, organization, urls)
        except RowError as e:
            yield Rejection(f"{table.file} line {child_line}", str(e))
    yield builder.bundle()


def _add(
    builder: BundleBuilder,
    table: Table,
    row: rows.Row,
    organization: str,
    urls: dict[tuple[str, str], str],
) -> None:
    """Add the resource of one row to the Bundle, conditional on its key."""
    key = table.key_of(row)
    empty = [c for c in table.key if not (row.get(c) or "").strip()]
    if empty:
        raise RowError(empty[0], "is empty, but it is the row's key")
    system = builder.facility.system(table.kind)
    resource: Resource = {"resourceType": table.resource, "identifier": [identifier(system, key)]}
    for path, value in table.fixed.items():
        put(resource, path, value)
    for column in table.columns:
        raw = row.get(column.name)
        if raw is None:
            raise RowError(column.name, f"is not in the file's header ({table.file})")
        if not raw.strip():
            if column.required:
                raise RowError(column.name, "is empty, but the mapping requires it")
            continue
        try:
            value = column.convert(raw)
        except ValueError as e:
            raise RowError(column.name, str(e)) from None
        for path in column.elements:
            put(resource, path, value)
        for path, fixed in column.also.items():
            put(resource, path, fixed)
    for link in table.links:
        value = (row.get(link.column) or "").strip() if link.column else ""
        if link.column and not value:
            raise RowError(link.column, f"is empty, but it links the row to {link.table}")
        target = urls.get((link.table, value))
        if target is None:
            reason = f"no row of {link.table} with the key '{value}' for this patient"
            raise RowError(link.column or "?", reason)
        put(resource, link.element, {"reference": target})
    resource = pruned(attribute(resource, builder.facility, organization))
    urls[(table.name, key)] = builder.put(resource, identifier_query(system, key))
    if not urls.get((table.name, "")):
        urls[(table.name, "")] = urls[(table.name, key)]  # the patient, for column-less links
