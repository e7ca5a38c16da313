"""Bundles the hub answers with: history, searchset, transaction-response."""

import uuid
from http import HTTPStatus
from typing import Any

from hub.fhir.outcome import operation_outcome
from hub.fhir.result import Context, Result, etag
from hub.store.resources import Stored, instant, now


def status_line(status: int) -> str:
    """Return an entry.response.status such as '201 Created'."""
    return f"{status} {HTTPStatus(status).phrase}"


def new_bundle(bundle_type: str, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Return a Bundle of the given type."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now())},
        "type": bundle_type,
        **extra,
        "entry": entries,
    }


def links(self_url: str, next_url: str | None) -> list[dict[str, str]]:
    """Return a Bundle's self and next links."""
    out = [{"relation": "self", "url": self_url}]
    if next_url:
        out.append({"relation": "next", "url": next_url})
    return out


def full_url(ctx: Context, stored: Stored) -> str:
    """Return the absolute URL of a stored resource."""
    return f"{ctx.base}/{stored.resource_type}/{stored.id}"


def search_entry(
    ctx: Context, stored: Stored, mode: str, resource: dict[str, Any]
) -> dict[str, Any]:
    """Return a searchset entry of a stored resource (as shown: `resource`), noting for the
    audit trail which facility holds it."""
    if ctx.audit is not None:
        ctx.audit.held(stored.facility)
    return {"fullUrl": full_url(ctx, stored), "resource": resource, "search": {"mode": mode}}


def entry_response(result: Result, body: bool) -> dict[str, Any]:
    """Return one transaction-response or batch-response entry."""
    response: dict[str, Any] = {"status": status_line(result.status)}
    entry: dict[str, Any] = {"response": response}
    stored = result.stored
    if stored is not None:
        response["etag"] = etag(stored)
        response["lastModified"] = stored.last_updated
        if result.location:
            response["location"] = f"{stored.resource_type}/{stored.id}/_history/{stored.version}"
    content = result.body
    if content is None and body and stored is not None and not stored.deleted:
        content = stored.resource
    if content is not None and content.get("resourceType") == "OperationOutcome":
        response["outcome"] = content
    elif content is not None and body:
        entry["resource"] = content
    if result.findings and "outcome" not in response:
        # Stored all the same: what to fix, for the next time (the national profiles).
        response["outcome"] = operation_outcome(result.findings)
    return entry
