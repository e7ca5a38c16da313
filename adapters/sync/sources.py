"""The hospital formats `ehrhub sync` reads: one line each, from format name to its adapter."""

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

from adapters.base import Facility, Output

Reader = Callable[[Path, Facility | None], Iterator[Output]]


class FormatUnavailable(Exception):
    """The format is named but its adapter cannot be used (not installed, or needs more)."""


def hl7v2(path: Path, facility: Facility | None) -> Iterator[Output]:
    """Yield the outputs of an HL7 v2 file (its messages, CR, LF or CRLF separated)."""
    from adapters import hl7v2 as adapter

    if facility is None:
        raise FormatUnavailable("HL7 v2 needs the sending facility: give --facility CODE")
    return adapter.parse_file(path, facility)


def csv(path: Path, facility: Facility | None) -> Iterator[Output]:
    """Yield the outputs of a CSV export: a folder of CSV files with its `mapping.toml`."""
    from adapters import csv as adapter

    if facility is None:
        raise FormatUnavailable("CSV needs the sending facility: give --facility CODE")
    mapping = path / "mapping.toml"
    if not mapping.is_file():
        raise FormatUnavailable(f"a CSV export is a folder with its mapping: no {mapping}")
    return adapter.parse(path, mapping, facility)


def module_parse(name: str, needs_facility: bool = False) -> Reader:
    """Return a reader calling `parse(path, facility)` of an adapter module, found when used."""

    def read(path: Path, facility: Facility | None) -> Iterator[Output]:
        if needs_facility and facility is None:
            raise FormatUnavailable("this format needs the sending facility: give --facility CODE")
        try:
            parse = importlib.import_module(name).parse
        except (ImportError, AttributeError) as error:
            raise FormatUnavailable(f"the {name} adapter is not yet available ({error})") from error
        outputs: Iterator[Output] = parse(path, facility)
        return outputs

    return read


FORMATS: dict[str, Reader] = {
    "hl7v2": hl7v2,
    "xml130": module_parse("adapters.xml130"),
    "csv": csv,
    "fhir": module_parse("adapters.fhir", needs_facility=True),
}
