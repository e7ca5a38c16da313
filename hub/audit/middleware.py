"""Audit every request under /fhir (and /audit, /admin, /quality, /reports), in one place no
route can skip.

The response is held back until its AuditEvent is stored: when the audit trail cannot be
written, the client gets 503 instead of an unaudited answer.
"""

import logging
from datetime import datetime
from typing import Any

from pymongo.errors import PyMongoError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.audit.event import Request, audit_event, event_key
from hub.audit.interactions import BATCH, UNAUDITED_PATHS, Interaction, interaction_of
from hub.audit.record import Record
from hub.audit.trail import ACCESS
from hub.auth.caller import Caller
from hub.auth.roles import Role
from hub.fhir.http import error_response
from hub.fhir.outcome import Unavailable
from hub.reporting.counters import Counters

log = logging.getLogger("ehrhub.audit")

# The FHIR API, the audit reports (they name the patients whose records were accessed), and
# the management of credentials.
AUDITED_PREFIXES = ("/fhir", "/audit", "/admin", "/quality", "/reports")


def audited(method: str, path: str) -> bool:
    """Tell whether a request is audited: all of /fhir, /audit, /admin, /quality and
    /reports but reading the discovery documents."""
    under = any(path == p or path.startswith(p + "/") for p in AUDITED_PREFIXES)
    return under and not (method in ("GET", "HEAD") and path in UNAUDITED_PATHS)


class AuditMiddleware:
    """Record one AuditEvent per FHIR request, before its response leaves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope["method"], scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        settings = scope["app"].state.settings
        record = Record(
            max_listed=settings.audit_max_listed,
            max_indexed=settings.audit_max_indexed_patients,
        )
        state["audit"] = record
        held: list[Message] = []
        status = 500

        async def hold(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            held.append(message)

        try:
            await self.app(scope, receive, hold)
        except Exception:
            await self._audit(scope, state, record, 500)  # the error is answered outside
            raise
        if await self._audit(scope, state, record, status):
            for message in held:
                await send(message)
            return
        response = error_response(
            Unavailable(
                "The audit trail cannot be written right now, so this answer is withheld "
                "(a write may nevertheless have been applied); retry shortly"
            )
        )
        await response(scope, receive, send)

    async def _audit(
        self, scope: Scope, state: dict[str, Any], record: Record, status: int
    ) -> bool:
        """Store the request's AuditEvent; tell whether it was stored."""
        app = scope["app"]
        caller = state.get("caller") or await _unchecked_caller(scope)
        target = _target(scope.get("path_params") or {})
        if target is not None and 400 <= status:
            record.resource(target)  # what was asked for: a 404 may hide a record
        recorded: datetime = app.state.clock.now()  # the hub's one clock (hub/core/clock.py)
        event_id = event_key(recorded)
        route = scope.get("route")
        interaction = interaction_of(
            getattr(route, "name", None), scope["method"], set(getattr(route, "methods", ()) or ())
        )
        if interaction.subtype == "transaction" and record.bundle_type == "batch":
            interaction = BATCH
        client = scope.get("client")
        request = Request(
            scope["method"],
            scope.get("path", ""),
            scope.get("query_string", b"").decode("latin-1"),
            client[0] if client else None,
            status,
        )
        facility_system = app.state.settings.facility_system
        try:
            event = audit_event(
                event_id, recorded, interaction, request, caller, record, facility_system
            )
        except Exception:  # a fault in describing the request must not leave it unaudited
            log.exception(
                "could not describe %s %s for the audit trail", request.method, request.path
            )
            event = audit_event(
                event_id, recorded, interaction, request, None, Record(), facility_system
            )
        await _count(app.state.counters, interaction, caller, record, status, recorded)
        agent = getattr(caller, "client_id", None)
        token = caller.token_id if caller is not None else None
        btg = ACCESS if caller is not None and caller.break_glass else None
        try:
            # Positional: stand-ins for the trail in tests take *args.
            await app.state.audit.append(
                event, agent, record.patients, token, btg, record.compartments
            )
        except PyMongoError as error:
            log.error("audit trail not written for %s %s: %s", request.method, request.path, error)
            return False
        except Exception:  # not the store being down: a refusal stays a refusal
            log.exception("audit trail not written for %s %s", request.method, request.path)
            return 400 <= status < 500
        return True


async def _count(
    counters: Counters,
    interaction: Interaction,
    caller: Caller | None,
    record: Record,
    status: int,
    recorded: datetime,
) -> None:
    """Add a request to the reporting counters: a facility's refused submission, or the
    records a facility read that others hold. Counting never fails a request."""
    try:
        if status >= 400 and _submission(interaction, caller):
            assert caller is not None and caller.facility is not None
            await counters.refused(caller.facility, recorded)
        reader = caller.facility if caller is not None else None
        if reader and status < 400 and interaction.action in ("R", "E") and record.holders:
            await counters.exchanged(reader, record.holders, recorded)
    except Exception:  # noqa: BLE001 - a fault in counting must not fail the request
        log.exception("could not count %s for the reports", interaction.subtype)


def _submission(interaction: Interaction, caller: Caller | None) -> bool:
    """Tell whether a request is a facility system submitting records (for the counters of
    submissions accepted and refused)."""
    writes = interaction.action in ("C", "U", "D") or interaction.subtype in (
        "transaction",
        "batch",
    )
    return writes and caller is not None and caller.role == Role.FACILITY and bool(caller.facility)


async def _unchecked_caller(scope: Scope) -> Caller | None:
    """Return the caller of a request no route authenticated (a 404 or 405), if its token is
    valid; None otherwise (a refused token names nobody)."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        caller: Caller = await scope["app"].state.auth.tokens.verify(token.strip())
    except Exception:  # any refusal: the event names no one
        return None
    return caller


def _target(params: dict[str, str]) -> str | None:
    """Return the "Type/id" a request's path names, if it names one."""
    if "patient_id" in params:
        return f"Patient/{params['patient_id']}"
    if "event_id" in params:
        return f"AuditEvent/{params['event_id']}"
    if params.get("resource_type") and params.get("resource_id"):
        return f"{params['resource_type']}/{params['resource_id']}"
    return None
