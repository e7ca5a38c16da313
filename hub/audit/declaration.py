"""Record a break-the-glass declaration in the audit trail, before its token is handed out.

/auth/break-glass is not under /fhir, so the audit middleware does not see it: this does.
"""

import logging

from fastapi import Request as HttpRequest

from hub.audit.event import Declaration, Request, declaration_event, event_key
from hub.audit.trail import DECLARATION
from hub.auth.caller import Caller
from hub.fhir.outcome import Unavailable

log = logging.getLogger("ehrhub.audit")


async def record_declaration(
    http: HttpRequest, caller: Caller, declaration: Declaration | None, status: int
) -> None:
    """Store the AuditEvent of a declaration (or, without one, of a refused declaration);
    answer 503 when the trail cannot be written, so that no emergency access goes unrecorded."""
    app = http.app
    recorded = app.state.clock.now()
    request = Request(
        http.method,
        http.url.path,
        "",  # the form is the body, never recorded; the event says what matters of it
        http.client.host if http.client else None,
        status,
    )
    event = declaration_event(
        event_key(recorded),
        recorded,
        request,
        caller,
        declaration,
        app.state.settings.facility_system,
    )
    patients = [declaration.patient] if declaration and declaration.patient else []
    token = declaration.token_id if declaration else caller.token_id
    try:
        await app.state.audit.append(
            event, caller.client_id, patients, token, DECLARATION if declaration else None
        )
    except Exception:
        log.exception("audit trail not written for a break-the-glass declaration")
        if declaration:  # no emergency access without its record; a refusal stands anyway
            raise Unavailable(
                "The audit trail cannot be written right now, so no emergency access is "
                "granted; retry shortly"
            ) from None
