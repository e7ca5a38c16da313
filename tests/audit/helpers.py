"""Helpers of the audit tests: callers with tokens, and the events stored for them."""

from dataclasses import dataclass
from typing import Any

import httpx
from auth.helpers import bearer, register, token_for
from support import FHIR_JSON, unique


@dataclass
class Who:
    """A registered caller: its client id, secret, token and request headers."""

    client_id: str
    secret: str
    token: str
    headers: dict[str, str]


async def caller(app: Any, client: httpx.AsyncClient, role: str, **fields: Any) -> Who:
    """Register a caller of a role and return it with a token."""
    if role in ("facility", "clinician"):
        fields.setdefault("facility", unique("F"))
    identity, secret = await register(app, role, **fields)
    token = await token_for(client, identity, secret)
    return Who(identity.client_id, secret, token, FHIR_JSON | bearer(token))


async def events_of(app: Any, client_id: str | None) -> list[dict[str, Any]]:
    """Return the stored AuditEvent documents of one agent, oldest first."""
    cursor = app.state.mongo.audit.find({"_hub.agent": client_id}).sort("_id", 1)
    return [doc async for doc in cursor]


def subtype(event: dict[str, Any]) -> str:
    """Return an event's restful-interaction code."""
    return str(event["subtype"][0]["code"])


def entities(event: dict[str, Any], role: str | None = None) -> set[str]:
    """Return the references of an event's entities (of one object-role code, if given)."""
    return {
        e["what"]["reference"]
        for e in event.get("entity", [])
        if "what" in e and (role is None or e.get("role", {}).get("code") == role)
    }


def agent_id(event: dict[str, Any]) -> str | None:
    """Return the client id of an event's requesting agent."""
    who = event["agent"][0]["who"]
    return who.get("identifier", {}).get("value")
