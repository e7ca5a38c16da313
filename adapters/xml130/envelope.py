"""Read a GIAMDINHHS submission file HOSO by HOSO, in constant memory.

The envelope is streamed with `iterparse`; each HOSO's FILEHOSO tables are base64-decoded
and parsed on their own, and the HOSO is dropped from the tree once it has been read.
"""

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

Record = dict[str, str]


@dataclass
class Hoso:
    """One HOSO (one episode of care): its tables' records, or the problems that stop reading it."""

    number: int  # 1-based position in the file
    facility_code: str  # THONGTINDONVI/MACSKCB, "" when absent
    tables: dict[str, list[Record]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ma_lk(self) -> str:
        """Return the episode key of the HOSO, from its first table that has one."""
        for records in self.tables.values():
            for record in records:
                if record.get("MA_LK"):
                    return record["MA_LK"]
        return ""


class EnvelopeError(ValueError):
    """The file as a whole cannot be read (not XML, or not a GIAMDINHHS envelope)."""


def records(root: ET.Element) -> list[Record]:
    """Return the records of an inner table: elements whose children are all plain fields."""
    found = []
    for element in root.iter():
        if len(element) and all(len(child) == 0 for child in element):
            found.append({child.tag: (child.text or "").strip() for child in element})
    return found


def read_table(kind: str, content: str) -> list[Record]:
    """Decode one FILEHOSO's base64 content and return its records; raise ValueError if broken."""
    try:
        raw = base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{kind}: NOIDUNGFILE is not valid base64 ({e})") from e
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise ValueError(f"{kind}: NOIDUNGFILE is not well-formed XML ({e})") from e
    return records(root)


def _hoso(element: ET.Element, number: int, facility_code: str) -> Hoso:
    hoso = Hoso(number, facility_code)
    for file in element.iter("FILEHOSO"):
        kind = (file.findtext("LOAIHOSO") or "").strip().upper()
        content = file.findtext("NOIDUNGFILE") or ""
        if not kind:
            hoso.problems.append("FILEHOSO without LOAIHOSO")
            continue
        try:
            hoso.tables.setdefault(kind, []).extend(read_table(kind, content))
        except ValueError as e:
            hoso.problems.append(str(e))
    return hoso


def read(source: str | Path | IO[bytes]) -> Iterator[Hoso]:
    """Yield the HOSO of a submission file one by one; raise EnvelopeError if it is unreadable."""
    facility_code = ""
    number = 0
    parents: list[ET.Element] = []
    seen_root = False
    try:
        for event, element in ET.iterparse(source, events=("start", "end")):
            if event == "start":
                if not seen_root:
                    seen_root = True
                    if element.tag != "GIAMDINHHS":
                        raise EnvelopeError(f"root element is {element.tag}, not GIAMDINHHS")
                parents.append(element)
                continue
            parents.pop()
            if element.tag == "MACSKCB":
                facility_code = (element.text or "").strip()
            elif element.tag == "HOSO":
                number += 1
                yield _hoso(element, number, facility_code)
                # Drop the HOSO just read, so that the tree never holds more than one.
                if parents:
                    parents[-1].remove(element)
    except ET.ParseError as e:
        raise EnvelopeError(f"not well-formed XML ({e})") from e
