"""Access tokens: short-lived JWTs signed with the keys of the hub's key file
(hub/auth/keys.py), which every hub process of a deployment shares."""

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from pymongo.asynchronous.collection import AsyncCollection

from hub.auth.caller import EMERGENCY, Caller
from hub.auth.identities import Identities, Identity
from hub.auth.keys import Keyring
from hub.auth.roles import Role
from hub.auth.scopes import ScopeError, Scopes

ALGORITHM = "HS256"
# Where hubs before the key file kept their signing key, in the `meta` collection: removed
# at start, since whoever reads the database could sign tokens with it.
SIGNING_KEY_ID = "token-signing-key"
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "iat", "exp", "jti", "role"]
# A break-the-glass token names the one Patient its emergency is about.
_BTG_PATIENT = re.compile(r"Patient/[A-Za-z0-9\-.]{1,64}")
# The identity's fields a token repeats as claims: a token whose claims no longer match its
# stored identity is refused, so that a changed role or facility applies at once.
_IDENTITY_CLAIMS = (
    ("role", "role"),
    ("fac", "facility"),
    ("prac", "practitioner"),
    ("pat", "patient"),
)


class TokenError(Exception):
    """A bearer token the hub does not accept; the message says why, without echoing it."""

    reason = "invalid"


class Expired(TokenError):
    reason = "expired"


class BadSignature(TokenError):
    reason = "bad-signature"


class WrongAudience(TokenError):
    reason = "wrong-audience"


class Malformed(TokenError):
    reason = "malformed"


class Revoked(TokenError):
    reason = "revoked"


class Outdated(TokenError):
    reason = "outdated"


@dataclass(frozen=True)
class Emergency:
    """A declared emergency: why, about which Patient ("Patient/<id>"), and how long its
    break-the-glass token lives."""

    reason: str
    patient: str
    lifetime_seconds: int


@dataclass(frozen=True)
class IssuedToken:
    """A new access token, as the OAuth2 token response carries it."""

    access_token: str
    expires_in: int
    scope: Scopes
    token_id: str  # its `jti`
    expires_at: int  # its `exp`, seconds since the epoch

    def response(self) -> dict[str, Any]:
        """Return the OAuth2 token response body."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": str(self.scope),
        }


async def forget_database_key(meta: AsyncCollection) -> None:
    """Remove the signing key that hubs before the key file kept in the database."""
    await meta.delete_one({"_id": SIGNING_KEY_ID})


class Tokens:
    """Issue and verify the hub's access tokens."""

    def __init__(
        self,
        keys: Keyring,
        identities: Identities,
        *,
        issuer: str,
        audience: str,
        lifetime_seconds: int,
    ) -> None:
        self.keys = keys
        self.identities = identities
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds

    def issue(
        self, identity: Identity, scopes: Scopes, emergency: Emergency | None = None
    ) -> IssuedToken:
        """Sign a token for an identity with the scopes granted to it; with an emergency, a
        break-the-glass token of purpose ETREAT that lives the emergency's lifetime."""
        now = int(time.time())
        lifetime = emergency.lifetime_seconds if emergency else self.lifetime_seconds
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": identity.client_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "scope": str(scopes),
            "role": str(identity.role),
        }
        optional = {
            "fac": identity.facility,
            "prac": identity.practitioner,
            "pat": identity.patient,
        }
        claims.update({k: v for k, v in optional.items() if v is not None})
        if emergency:
            claims.update(
                {
                    "purpose": EMERGENCY,
                    "btg_reason": emergency.reason,
                    "btg_patient": emergency.patient,
                }
            )
        key = self.keys.signing()
        token = jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})
        return IssuedToken(token, lifetime, scopes, claims["jti"], claims["exp"])

    async def verify(self, token: str) -> Caller:
        """Return the caller a token stands for; raise a TokenError saying why it is refused.
        The identity is read on every call, so that revoking it stops its tokens at once and
        a changed role, facility, practitioner or patient refuses the tokens issued before."""
        claims = self.decode(token)
        identity = await self.identities.get(claims["sub"])
        if identity is None or identity.revoked:
            raise Revoked("The token's client has been revoked or is no longer known")
        try:
            scopes = Scopes.parse(claims.get("scope"))
            Role(claims["role"])
        except (ScopeError, ValueError):
            raise Malformed("The token's scope or role is not one the hub issues") from None
        for claim, field in _IDENTITY_CLAIMS:
            stored = getattr(identity, field)
            if claims.get(claim) != (None if stored is None else str(stored)):
                raise Outdated(
                    f"The token's client has a different {field} since the token was issued: "
                    "get a new token"
                )
        purpose, reason = claims.get("purpose"), claims.get("btg_reason")
        patient = claims.get("btg_patient")
        emergency = purpose == EMERGENCY
        if (
            purpose not in (None, EMERGENCY)
            or emergency != isinstance(reason, str)
            or emergency != isinstance(patient, str)
            or (emergency and not _BTG_PATIENT.fullmatch(str(patient)))
        ):
            raise Malformed("The token's purpose is not one the hub issues")
        return Caller(
            role=identity.role,
            client_id=identity.client_id,
            scopes=scopes,
            facility=identity.facility,
            practitioner=identity.practitioner,
            patient=identity.patient,
            token_id=claims["jti"],
            purpose=purpose,
            break_glass_reason=reason,
            break_glass_patient=patient,
        )

    def decode(self, token: str) -> dict[str, Any]:
        """Check a token's signature (by the key its `kid` names), lifetime, issuer and
        audience; return its claims."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise Malformed("The token is not a JWT the hub issued") from None
        secret = self.keys.verifying(kid) if isinstance(kid, str) else None
        if secret is None:
            raise BadSignature(
                "The token's signature does not match: it names no key this hub holds (a key "
                "removed since, or none of the hub's)"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Expired("The token has expired: get a new one at /auth/token") from None
        except jwt.InvalidSignatureError:
            raise BadSignature("The token's signature does not match: it was altered") from None
        except jwt.InvalidAudienceError:
            message = f"The token is not meant for this hub (aud {self.audience})"
            raise WrongAudience(message) from None
        except jwt.InvalidIssuerError:
            raise WrongAudience(f"The token was not issued by this hub ({self.issuer})") from None
        except jwt.MissingRequiredClaimError as error:
            raise Malformed(f"The token lacks the {error.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise Malformed(f"The token is not signed with {ALGORITHM}") from None
        except jwt.InvalidTokenError:
            raise Malformed("The token is not a JWT the hub issued") from None
        return claims
