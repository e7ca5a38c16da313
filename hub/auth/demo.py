"""Credentials of `ehrhub demo`: a client for each simulated facility, which its `ehrhub sync`
uses, and logins for the people who explore the demo (admin, clinician, ministry analyst,
auditor). Each run revokes the previous run's demo identities and makes new ones."""

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from hub.auth.identities import Identities, Identity, identities_at, new_identity
from hub.auth.roles import Role
from hub.settings import Settings

DEMO_NAME = "demo"  # the name every demo identity carries, to find them again
PEOPLE = (
    (Role.ADMIN, "admin"),
    (Role.CLINICIAN, "clinician"),
    (Role.MINISTRY, "ministry"),
    (Role.AUDITOR, "auditor"),
)


@dataclass(frozen=True)
class DemoCredential:
    """One demo identity as its user needs it: who, and the secret shown this once."""

    role: str
    client_id: str
    secret: str
    facility: str | None = None
    username: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return it as the demo's credentials file lists it."""
        found = {"role": self.role, "client_id": self.client_id, "client_secret": self.secret}
        if self.facility:
            found["facility"] = self.facility
        if self.username:
            found["username"] = self.username
        return found


def issue(
    uri: str, settings: Settings, facilities: list[str]
) -> tuple[dict[str, DemoCredential], list[DemoCredential]]:
    """Return new clients of the facilities (by code) and the people's logins, stored in the
    hub's database at `uri`; the clinician works at the first facility."""
    return asyncio.run(_issue(uri, settings, facilities))


async def _issue(
    uri: str, settings: Settings, facilities: list[str]
) -> tuple[dict[str, DemoCredential], list[DemoCredential]]:
    async with identities_at(uri, settings) as identities:
        for old in await identities.all():
            if old.name == DEMO_NAME and not old.revoked:
                await identities.revoke(old.client_id)
        clients = {}
        for code in facilities:
            made = await _create(identities, Role.FACILITY, facility=code)
            clients[code] = made
        # Usernames are unique for good: each run's people get a new suffix.
        run = secrets.token_hex(2)
        people = [
            await _create(
                identities,
                role,
                facility=facilities[0] if role is Role.CLINICIAN else None,
                username=f"demo-{kind}-{run}",
            )
            for role, kind in PEOPLE
        ]
        return clients, people


async def _create(
    identities: Identities, role: Role, facility: str | None = None, username: str | None = None
) -> DemoCredential:
    identity: Identity
    identity, secret = new_identity(role, facility=facility, name=DEMO_NAME, username=username)
    await identities.create(identity)
    return DemoCredential(str(role), identity.client_id, secret, facility, identity.username)
