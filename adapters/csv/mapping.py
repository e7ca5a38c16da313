"""The mapping file a hospital edits (TOML): per CSV file, the resource its rows become, the
column holding each row's own key, column -> FHIR element with simple conversions, and how
rows link to rows of other files. Read and checked once, before any row."""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.base import TZ_VN, Resource
from adapters.csv.elements import steps
from adapters.xml130.values import number

CONVERSIONS = ("text", "date", "number", "name")
DEFAULT_DATE_FORMAT = "%d/%m/%Y"


class MappingFileError(ValueError):
    """A mapping file that cannot be used, with the table and setting at fault."""


@dataclass(frozen=True)
class Column:
    """How one column's value becomes FHIR: the elements it fills, converted how."""

    name: str
    elements: tuple[str, ...]
    conversion: str = "text"
    format: str = DEFAULT_DATE_FORMAT
    codes: Mapping[str, Any] = field(default_factory=dict)
    required: bool = False
    also: Mapping[str, Any] = field(default_factory=dict)  # `with`: set when the value is

    def convert(self, raw: str) -> Any:
        """Return the FHIR value of a cell, or raise ValueError saying why there is none."""
        value: Any = raw.strip()
        if self.codes:
            if value not in self.codes:
                known = ", ".join(self.codes)
                raise ValueError(f"'{value}' is not one of the codes mapped ({known})")
            value = self.codes[value]
        if self.conversion == "date":
            return date(value, self.format)
        if self.conversion == "number":
            found = number(value) if isinstance(value, str) else value
            if found is None:
                raise ValueError(f"'{value}' is not a number")
            return found
        if self.conversion == "name":
            return human_name(value)
        return value


@dataclass(frozen=True)
class Link:
    """A reference from a row to a row of an earlier table, by that row's key."""

    element: str
    table: str
    column: str | None  # None: the Bundle's patient (a link to the patients table only)


@dataclass(frozen=True)
class Table:
    """One CSV file of the export and the resource each of its rows becomes."""

    name: str
    file: str
    resource: str
    key: tuple[str, ...]
    kind: str
    columns: tuple[Column, ...]
    links: tuple[Link, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def key_of(self, row: Mapping[str, str]) -> str:
        """Return a row's own key: its key columns joined by `.`."""
        return ".".join((row.get(c) or "").strip() for c in self.key)


@dataclass(frozen=True)
class CsvMapping:
    """A whole mapping file: the patients table first, then the tables that hang off it."""

    tables: tuple[Table, ...]
    delimiter: str | None = None
    encoding: str = "utf-8-sig"

    @property
    def patients(self) -> Table:
        """Return the table each Bundle is built around (its first)."""
        return self.tables[0]

    def table(self, name: str) -> Table:
        """Return a table by its name in the mapping."""
        return next(t for t in self.tables if t.name == name)


def date(value: str, fmt: str) -> str:
    """Return a date written as `fmt` as a FHIR date, or a dateTime in Vietnam time when the
    format has a time."""
    try:
        parsed = datetime.strptime(value, fmt)
    except ValueError:
        raise ValueError(f"'{value}' is not a date written {fmt}") from None
    if any(part in fmt for part in ("%H", "%I", "%M")):
        return parsed.replace(tzinfo=TZ_VN).isoformat()
    return parsed.date().isoformat()


def human_name(value: str) -> Resource:
    """Return a Vietnamese full name (family name first) as a HumanName."""
    words = value.split()
    name: Resource = {"use": "official", "text": " ".join(words)}
    if len(words) > 1:
        name |= {"family": words[0], "given": words[1:]}
    return name


def load(path: str | Path) -> CsvMapping:
    """Read and check a mapping file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise MappingFileError(f"{path}: {e}") from None
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> CsvMapping:
    """Check a mapping read from TOML (or built in code) and return it."""
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, dict) or not raw_tables:
        raise MappingFileError("the mapping has no [tables.NAME] section")
    tables: list[Table] = []
    for name, raw in raw_tables.items():
        tables.append(_table(name, raw, [t.name for t in tables]))
    if tables[0].links:
        raise MappingFileError(f"[tables.{tables[0].name}]: the first table (patients) links")
    for table in tables[1:]:
        if not _reaches_patients(table, tables):
            raise MappingFileError(
                f"[tables.{table.name}]: no link leads to [tables.{tables[0].name}]"
            )
    delimiter = data.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise MappingFileError(f"delimiter must be one character, not {delimiter!r}")
    return CsvMapping(tuple(tables), delimiter, str(data.get("encoding", "utf-8-sig")))


def _reaches_patients(table: Table, tables: list[Table]) -> bool:
    by_name = {t.name: t for t in tables}
    return any(
        link.column is not None
        and (link.table == tables[0].name or _reaches_patients(by_name[link.table], tables))
        for link in table.links
    )


def _table(name: str, raw: Any, earlier: list[str]) -> Table:
    where = f"[tables.{name}]"
    if not isinstance(raw, dict):
        raise MappingFileError(f"{where} must be a table")
    for setting in ("file", "resource", "key", "kind"):
        if not raw.get(setting):
            raise MappingFileError(f"{where}: `{setting}` is required")
    key = raw["key"]
    links = []
    for element, spec in (raw.get("links") or {}).items():
        if not isinstance(spec, dict) or "table" not in spec:
            raise MappingFileError(f"{where} links.{element}: needs `table` (and `column`)")
        if spec["table"] not in earlier:
            raise MappingFileError(
                f"{where} links.{element}: table '{spec['table']}' must come earlier in the file"
            )
        if "column" not in spec and spec["table"] != earlier[0]:
            raise MappingFileError(f"{where} links.{element}: needs the `column` holding the key")
        _check_path(f"{where} links", element)
        links.append(Link(element, spec["table"], spec.get("column")))
    columns = tuple(_column(where, c, s) for c, s in (raw.get("columns") or {}).items())
    for path in raw.get("fixed") or {}:
        _check_path(f"{where} fixed", path)
    return Table(
        name,
        raw["file"],
        raw["resource"],
        (key,) if isinstance(key, str) else tuple(key),
        raw["kind"],
        columns,
        tuple(links),
        raw.get("fixed") or {},
    )


def _column(where: str, name: str, spec: Any) -> Column:
    if isinstance(spec, str):
        _check_path(f"{where} columns.{name}", spec)
        return Column(name, (spec,))
    if not isinstance(spec, dict) or "element" not in spec:
        raise MappingFileError(f"{where} columns.{name}: give an element path or {{element=...}}")
    conversion = spec.get("as", "text")
    if conversion not in CONVERSIONS:
        raise MappingFileError(
            f"{where} columns.{name}: as = '{conversion}' is not one of {', '.join(CONVERSIONS)}"
        )
    element = spec["element"]
    elements = (element,) if isinstance(element, str) else tuple(element)
    for path in [*elements, *(spec.get("with") or {})]:
        _check_path(f"{where} columns.{name}", path)
    return Column(
        name,
        elements,
        conversion,
        spec.get("format", DEFAULT_DATE_FORMAT),
        spec.get("codes") or {},
        bool(spec.get("required", False)),
        spec.get("with") or {},
    )


def _check_path(where: str, path: str) -> None:
    try:
        steps(path)
    except ValueError as e:
        raise MappingFileError(f"{where}: {e}") from None
