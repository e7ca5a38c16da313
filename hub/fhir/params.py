"""Parameters shared by the interactions that return pages: _count and instants."""

from datetime import datetime

from hub.fhir.outcome import BadRequest
from hub.fhir.result import Context
from hub.fhir.validate import storable_type


def page_size(ctx: Context, params: dict[str, str]) -> int:
    """Return the page size asked for with _count, within the configured bounds."""
    raw = params.get("_count")
    if raw is None:
        return int(ctx.settings.default_page_size)
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest(f"_count must be a whole number, not '{raw}'", expression="_count")
    return max(1, min(int(raw), int(ctx.settings.max_page_size)))


def parse_instant(value: str, name: str) -> datetime:
    """Parse an instant parameter such as _since."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name} must be an instant like 2026-01-31T08:00:00Z", expression=name
        ) from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} needs a timezone, e.g. Z or +07:00", expression=name)
    return parsed


def type_list(raw: str | None) -> list[str]:
    """Return the resource types of a `_type` parameter, each one stored by the hub."""
    types = [t.strip() for t in (raw or "").split(",") if t.strip()]
    for t in types:
        storable_type(t)
    return types
