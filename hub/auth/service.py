"""The token service: authenticate a client or a person and issue a token with granted scopes.
https://datatracker.ietf.org/doc/html/rfc6749#section-4.4 (client credentials)
"""

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from hub.audit.event import Declaration
from hub.auth.assertions import (
    ASSERTION_TYPE,
    AssertionRefused,
    UsedAssertions,
    check_assertion,
    unverified_client,
)
from hub.auth.caller import Caller
from hub.auth.deps import TOKEN_HINT
from hub.auth.identities import Identities, Identity
from hub.auth.keys import Keyring
from hub.auth.passwords import verify_secret
from hub.auth.roles import Role
from hub.auth.scopes import ScopeError, grant
from hub.auth.tokens import Emergency, IssuedToken, Tokens, forget_database_key
from hub.fhir.outcome import BadRequest, Forbidden, Unauthorized
from hub.settings import TOKEN_KEY_FILE, Settings

GRANT_TYPE = "client_credentials"
# One message for an unknown user, a wrong password and a revoked person: no hint which.
LOGIN_REFUSED = "The username or password is wrong"
# A declared emergency's reason: long enough to say why, short enough for a token claim.
REASON_MIN_CHARACTERS = 10
REASON_MAX_CHARACTERS = 500
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class OAuthError(Exception):
    """An OAuth2 error response: https://datatracker.ietf.org/doc/html/rfc6749#section-5.2"""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


@dataclass
class Authority:
    """Identities, tokens and used assertions of one database: what /auth and the bearer
    dependency use."""

    identities: Identities
    tokens: Tokens
    used_assertions: UsedAssertions
    settings: Settings

    @classmethod
    async def start(cls, db: AsyncDatabase, settings: Settings) -> "Authority":
        """Prepare the collections, load (or create) the token key file, and remove the
        signing key that earlier hubs kept in the database."""
        identities = Identities(db)
        used = UsedAssertions(db)
        await identities.ensure_indexes()
        await used.ensure_indexes()
        keys = Keyring(settings.token_key_file or settings.data_dir / TOKEN_KEY_FILE)
        await forget_database_key(db["meta"])
        tokens = Tokens(
            keys,
            identities,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            lifetime_seconds=settings.token_lifetime_seconds,
        )
        return cls(identities, tokens, used, settings)

    async def client_credentials(self, form: dict[str, str], token_endpoint: str) -> IssuedToken:
        """Answer a client_credentials token request, authenticated by secret or assertion."""
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != GRANT_TYPE:
            raise OAuthError(
                "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported; use {GRANT_TYPE}",
            )
        if "client_assertion" in form or "client_assertion_type" in form:
            if "client_secret" in form:
                raise OAuthError(
                    "invalid_request", "use one way to authenticate: a secret or an assertion"
                )
            identity = await self._by_assertion(form, token_endpoint)
        else:
            identity = await self._by_secret(form)
        return self._issue(identity, form.get("scope"))

    async def login(self, form: dict[str, str]) -> IssuedToken:
        """Answer a person's username and password with a token."""
        username, password = form.get("username"), form.get("password")
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required")
        person = await self.identities.by_username(username)
        hashed = person.password_hash if person is not None else None
        matches = await asyncio.to_thread(verify_secret, hashed, password)
        if person is None or not matches or person.revoked:
            raise OAuthError("invalid_grant", LOGIN_REFUSED)
        return self._issue(person, form.get("scope"))

    async def break_glass(
        self, caller: Caller, form: dict[str, str]
    ) -> tuple[IssuedToken, Declaration]:
        """Answer a clinician's declared emergency with a break-the-glass token: purpose
        ETREAT, the reason, the one Patient it is about, the scopes of the token presented,
        and `break_glass_seconds` to live. Only an ordinary token declares: a break-the-glass
        one cannot renew itself."""
        if not caller.authenticated or caller.client_id is None:
            raise Unauthorized(
                f"Declaring an emergency needs a bearer token: {TOKEN_HINT}", error=None
            )
        if caller.role != Role.CLINICIAN:
            raise Forbidden(
                f"Only a clinician may declare an emergency (break the glass), "
                f"not a {caller.role} client"
            )
        if caller.break_glass:
            raise Forbidden(
                "A break-the-glass token cannot declare another emergency: declare again with "
                "an ordinary token (from /auth/login or /auth/token)"
            )
        reason = _reason(form.get("reason"))
        patient = _patient(form.get("patient"))
        identity = await self.identities.get(caller.client_id)
        if identity is None or identity.revoked:  # revoked since its token was checked
            raise Unauthorized("The token's client has been revoked or is no longer known")
        emergency = Emergency(reason, patient, self.settings.break_glass_seconds)
        issued = self.tokens.issue(identity, caller.scopes, emergency)
        expires = datetime.fromtimestamp(issued.expires_at, UTC)
        return issued, Declaration(reason, issued.token_id, expires, patient)

    async def _by_secret(self, form: dict[str, str]) -> Identity:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id or not secret:
            raise invalid_client("client_id and client_secret are required (or a client_assertion)")
        identity = await self.identities.get(client_id)
        hashed = identity.secret_hash if identity is not None else None
        matches = await asyncio.to_thread(verify_secret, hashed, secret)
        # Unknown, wrong and revoked read the same, so that client ids cannot be probed.
        if identity is None or not matches or identity.revoked:
            raise invalid_client("The client is unknown, revoked, or the secret is wrong")
        return identity

    async def _by_assertion(self, form: dict[str, str], token_endpoint: str) -> Identity:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError("invalid_request", "client_assertion is required")
        try:
            client_id = unverified_client(assertion)
            if form.get("client_id") not in (None, client_id):
                raise AssertionRefused("client_id differs from the assertion's iss")
            identity = await self.identities.get(client_id)
            if identity is None or identity.revoked:
                raise AssertionRefused("The client is unknown or revoked")
            claims = check_assertion(
                assertion, identity, token_endpoint, self.settings.max_assertion_lifetime_seconds
            )
            await self.used_assertions.use(client_id, str(claims["jti"]), float(claims["exp"]))
        except AssertionRefused as error:
            raise invalid_client(str(error)) from None
        return identity

    def _issue(self, identity: Identity, scope: str | None) -> IssuedToken:
        try:
            scopes = grant(identity.role, scope)
        except ScopeError as error:
            raise OAuthError("invalid_scope", str(error)) from None
        return self.tokens.issue(identity, scopes)


def _reason(given: str | None) -> str:
    """Return a declared emergency's reason, refusing one missing, too short or too long."""
    reason = (given or "").strip()
    if not reason:
        raise BadRequest(
            "reason is required: say why this is an emergency (form field reason)",
            expression="reason",
        )
    if len(reason) < REASON_MIN_CHARACTERS:
        raise BadRequest(
            f"reason is too short ({len(reason)} characters): say why this is an emergency "
            f"in {REASON_MIN_CHARACTERS} characters at least",
            expression="reason",
        )
    if len(reason) > REASON_MAX_CHARACTERS:
        raise BadRequest(
            f"reason is too long ({len(reason)} characters; at most {REASON_MAX_CHARACTERS})",
            expression="reason",
        )
    return reason


def _patient(given: str | None) -> str:
    """Return the Patient reference an emergency is about, refusing one missing or malformed."""
    if not given or not given.strip():
        raise BadRequest(
            "patient is required: name the Patient the emergency is about, Patient/<id> "
            "(form field patient); the token reaches that patient only",
            expression="patient",
        )
    rid = given.strip().removeprefix("Patient/")
    if not _FHIR_ID.fullmatch(rid):
        raise BadRequest(
            f"patient takes a Patient reference (Patient/<id>), not {given!r}",
            expression="patient",
        )
    return f"Patient/{rid}"
