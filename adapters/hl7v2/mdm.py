"""MDM medical document messages: a DocumentReference from TXA, its text from the OBXs."""

import base64

from adapters.base import Resource, identifier

from . import datatypes as dt
from .common import (
    Context,
    MappingError,
    add_encounter,
    add_patient,
    add_practitioner,
    identifier_query,
)
from .message import Segment

# TXA-17 document completion status (table 0271) to DocumentReference.docStatus.
DOC_STATUS = {
    "AU": "final",
    "LA": "final",
    "PA": "preliminary",
    "DI": "preliminary",
    "DO": "preliminary",
    "IP": "preliminary",
    "IN": "preliminary",
}
TEXT_TYPES = {"TX", "ST", "FT", "CE", "CWE"}


def map_mdm(ctx: Context) -> None:
    """Add the Patient, Encounter and the DocumentReference the TXA describes."""
    txa = ctx.message.first("TXA")
    if txa is None:
        raise MappingError(f"MDM^{ctx.message.trigger} has no TXA segment")
    add_patient(ctx)
    add_encounter(ctx)
    value = txa.get(12) or txa.get(15) or txa.get(14) or ctx.key(ctx.mrn, ctx.message.control_id)
    system = ctx.facility.system("document")
    document: Resource = {
        "resourceType": "DocumentReference",
        "identifier": [identifier(system, value)],
        "status": "entered-in-error" if txa.get(19).upper() == "OB" else "current",
    }
    if txa.get(17).upper() in DOC_STATUS:
        document["docStatus"] = DOC_STATUS[txa.get(17).upper()]
    kind = dt.codeable_concept(txa.rep(2))
    if kind:
        document["type"] = kind
    document["subject"] = ctx.ref(ctx.patient)
    when = dt.instant(txa.get(4)) or dt.instant(txa.get(6))
    if when:
        document["date"] = when
    authors = [url for rep in txa.reps(9) if (url := add_practitioner(ctx, rep))]
    document["author"] = [ctx.ref(url) for url in authors] or [ctx.ref(ctx.organization)]
    document["custodian"] = ctx.ref(ctx.organization)
    document["content"] = [{"attachment": a} for a in attachments(ctx, txa)]
    if ctx.encounter:
        document["context"] = {"encounter": [ctx.ref(ctx.encounter)]}
    ctx.builder.put(document, identifier_query(system, value))


def attachments(ctx: Context, txa: Segment) -> list[Resource]:
    """Return the document's text (text OBXs, one line each, base64) and any
    encapsulated data (ED OBXs) as attachments."""
    lines: list[str] = []
    found: list[Resource] = []
    for obx in ctx.message.all("OBX"):
        kind = obx.get(2).upper()
        if kind in TEXT_TYPES:
            coded = kind in ("CE", "CWE")
            lines += [(r.get(2) or r.get(1)) if coded else r.get(1) for r in obx.reps(5)]
        elif kind == "ED" and obx.get(5, 4).upper() == "BASE64" and _is_base64(obx.get(5, 5)):
            content_type = "/".join(p for p in (obx.get(5, 2), obx.get(5, 3)) if p)
            found.append({"contentType": content_type.lower(), "data": obx.get(5, 5)})
    title = txa.get(2, 2) or txa.get(2) or "document"
    if lines:
        data = base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")
        found.insert(0, {"contentType": "text/plain", "data": data, "title": title})
    return found or [{"title": title}]


def _is_base64(data: str) -> bool:
    try:
        return bool(data) and bool(base64.b64decode(data, validate=True))
    except ValueError:
        return False
