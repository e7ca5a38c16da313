"""The caller of one request: who they are and what their token lets them do."""

from dataclasses import dataclass

from hub.auth.roles import Role
from hub.auth.scopes import Scopes

# v3-ActReason's emergency treatment: the purpose of a break-the-glass token.
EMERGENCY = "ETREAT"


@dataclass(frozen=True)
class Caller:
    """Who makes a request, as their verified token says.

    Facility scoping, consent and audit read this: `facility` is the facility code the caller
    acts for (facility systems and clinicians), `practitioner` a clinician's Practitioner
    reference or identifier, `patient` a patient's citizen ID; all four as the caller's stored
    identity has them now (a token that disagrees is refused).
    """

    role: Role | None
    client_id: str | None
    scopes: Scopes
    facility: str | None = None
    practitioner: str | None = None
    patient: str | None = None
    # The token's `jti`, for the audit trail.
    token_id: str | None = None
    # The declared purpose of use, a v3-ActReason code: None is ordinary treatment, ETREAT an
    # emergency declared at /auth/break-glass, whose reason travels with it.
    purpose: str | None = None
    break_glass_reason: str | None = None
    # The one Patient ("Patient/<id>") a break-the-glass token was declared for.
    break_glass_patient: str | None = None
    # False only for the unrestricted caller of a hub that does not require tokens yet.
    authenticated: bool = True

    @property
    def break_glass(self) -> bool:
        """Tell whether the caller acts under a declared emergency (break the glass)."""
        return self.purpose == EMERGENCY

    def allows(self, letter: str, resource_type: str) -> bool:
        """Tell whether the caller may do one SMART interaction (c r u d s) on a type."""
        return not self.authenticated or self.scopes.allows(letter, resource_type)


# The caller without a token while `auth_required` is off: everything, as before auth landed.
UNRESTRICTED_CALLER = Caller(role=None, client_id=None, scopes=Scopes(), authenticated=False)
