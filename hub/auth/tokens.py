"""Access tokens: short-lived JWTs signed with a key every hub process on one database shares."""

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from hub.auth.caller import EMERGENCY, Caller
from hub.auth.identities import Identities, Identity
from hub.auth.roles import Role
from hub.auth.scopes import ScopeError, Scopes

ALGORITHM = "HS256"
# The signing key's document in the `meta` collection.
SIGNING_KEY_ID = "token-signing-key"
KEY_BYTES = 64
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "iat", "exp", "jti", "role"]


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


@dataclass(frozen=True)
class Emergency:
    """A declared emergency: why, and how long its break-the-glass token lives."""

    reason: str
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


async def signing_key(meta: AsyncCollection) -> bytes:
    """Return the token-signing key, creating it on the database's first start; hub processes
    starting together agree on the first one written."""
    fresh = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    for _ in range(2):
        try:
            document = await meta.find_one_and_update(
                {"_id": SIGNING_KEY_ID},
                {"$setOnInsert": {"key": fresh, "algorithm": ALGORITHM}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            if document is not None:
                return base64.b64decode(document["key"])
        except DuplicateKeyError:
            continue  # another process inserted it between our find and insert: read theirs
    raise RuntimeError("could not read or create the token-signing key in `meta`")


class Tokens:
    """Issue and verify the hub's access tokens."""

    def __init__(
        self,
        key: bytes,
        identities: Identities,
        *,
        issuer: str,
        audience: str,
        lifetime_seconds: int,
    ) -> None:
        self._key = key
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
            claims.update({"purpose": EMERGENCY, "btg_reason": emergency.reason})
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        return IssuedToken(token, lifetime, scopes, claims["jti"], claims["exp"])

    async def verify(self, token: str) -> Caller:
        """Return the caller a token stands for; raise a TokenError saying why it is refused.
        The identity is read on every call, so that revoking it stops its tokens at once."""
        claims = self.decode(token)
        identity = await self.identities.get(claims["sub"])
        if identity is None or identity.revoked:
            raise Revoked("The token's client has been revoked or is no longer known")
        try:
            scopes = Scopes.parse(claims.get("scope"))
            role = Role(claims["role"])
        except (ScopeError, ValueError):
            raise Malformed("The token's scope or role is not one the hub issues") from None
        purpose, reason = claims.get("purpose"), claims.get("btg_reason")
        if purpose not in (None, EMERGENCY) or (purpose == EMERGENCY) != isinstance(reason, str):
            raise Malformed("The token's purpose is not one the hub issues")
        return Caller(
            role=role,
            client_id=identity.client_id,
            scopes=scopes,
            facility=claims.get("fac"),
            practitioner=claims.get("prac"),
            patient=claims.get("pat"),
            token_id=claims["jti"],
            purpose=purpose,
            break_glass_reason=reason,
        )

    def decode(self, token: str) -> dict[str, Any]:
        """Check a token's signature, lifetime, issuer and audience; return its claims."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
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
