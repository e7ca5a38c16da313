"""XML130 field values as FHIR values: dates in Vietnam time, numbers, codes, queries."""

import base64
import re
from datetime import datetime
from typing import Any

from adapters.base import TZ_VN, Facility

CODE_SYSTEM = "https://moh.gov.vn/fhir/CodeSystem"


class RecordError(ValueError):
    """A value of a detail record that cannot be read, its table and record named."""


def where(table: str, record: dict[str, str]) -> str:
    """Return how a rejection names a record: its table, MA_LK and, for detail rows, STT."""
    place = f"{table} MA_LK={record.get('MA_LK', '')}"
    return f"{place} STT={record['STT']}" if table != "XML1" and record.get("STT") else place


def date_time(value: str, field: str) -> str:
    """Return yyyyMMdd[HHmm[ss]] as a FHIR date or dateTime in Vietnam time."""
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    try:
        parsed = datetime.strptime(value, formats[len(value)])
    except (KeyError, ValueError):
        raise ValueError(f"{field} '{value}' is not a date yyyyMMdd or yyyyMMddHHmm") from None
    if len(value) == 8:
        return parsed.date().isoformat()
    return parsed.replace(tzinfo=TZ_VN).isoformat()


def instant(value: str, field: str) -> str:
    """Return yyyyMMdd[HHmm] as a FHIR instant (midnight in Vietnam time for a bare date)."""
    return date_time(value if len(value) > 8 else value + "0000", field)


def birth_date(value: str) -> str:
    """Return NGAY_SINH (yyyyMMdd[HHmm], 00 for an unknown month or day, or only yyyy) as a
    FHIR date."""
    if len(value) == 4 and value.isdigit():
        return value
    if len(value) >= 8 and value[:8].isdigit() and "00" in (value[4:6], value[6:8]):
        # An unknown month or day is written 00: the date is as precise as what is known.
        return value[:4] if value[4:6] == "00" else f"{value[:4]}-{value[4:6]}"
    return date_time(value[:8], "NGAY_SINH")


def number(value: str) -> float | int | None:
    """Return a number written with a dot or a decimal comma, or None if it is not one."""
    text = value.strip().replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", text):
        return None  # not NaN, inf or 1e3 either: only what a clerk writes
    found = float(text)
    return int(found) if found.is_integer() and "." not in text else found


def split(value: str) -> list[str]:
    """Return the non-empty parts of a `;`-separated field."""
    return [part.strip() for part in value.split(";") if part.strip()]


def local_code(table: str, code: str, display: str = "") -> dict[str, Any]:
    """Return a Coding in one of the decision's own code lists (ma-thuoc, ma-dich-vu, ...)."""
    coding: dict[str, Any] = {"system": f"{CODE_SYSTEM}/{table}", "code": code}
    if display:
        coding["display"] = display
    return coding


def record_id(facility: Facility, kind: str, *parts: str) -> dict[str, str]:
    """Return a stable identifier of a detail record (MA_LK and STT) in a facility's system."""
    return {"system": facility.system(kind), "value": ".".join(parts)}


def text_attachment(text: str, title: str) -> dict[str, Any]:
    """Return a plain-text Attachment."""
    return {
        "contentType": "text/plain; charset=utf-8",
        "language": "vi",
        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
        "title": title,
    }
