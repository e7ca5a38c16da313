"""SMART Backend Services client assertions (private_key_jwt), each usable once.
https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

import time
from datetime import UTC, datetime
from typing import Any

import jwt
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from hub.auth.identities import Identity

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# What SMART Backend Services asks servers to support.
ALGORITHMS = ("RS384", "ES384")
# The `jti` of every assertion used, until it expires, so that none is accepted twice.
USED_ASSERTIONS = "used_assertions"
# Clocks of client and hub differ a little.
LEEWAY_SECONDS = 30


class AssertionRefused(Exception):
    """A client assertion the hub refuses (OAuth2 invalid_client); the message says why."""


def unverified_client(assertion: str) -> str:
    """Return the client id an assertion claims to come from, before checking it."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise AssertionRefused("client_assertion is not a JWT") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or claims.get("sub") != issuer:
        raise AssertionRefused("client_assertion's iss and sub must both be the client_id")
    if header.get("alg") not in ALGORITHMS:
        raise AssertionRefused(
            f"client_assertion is signed with {header.get('alg')}; use one of "
            f"{', '.join(ALGORITHMS)}"
        )
    return issuer


def check_assertion(
    assertion: str, identity: Identity, token_endpoint: str, max_lifetime: int
) -> dict[str, Any]:
    """Verify an assertion's signature with the client's registered keys and its claims;
    return the claims."""
    header = jwt.get_unverified_header(assertion)
    key = _key_for(identity, header)
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[header["alg"]],
            audience=token_endpoint,
            issuer=identity.client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise AssertionRefused("client_assertion has expired") from None
    except jwt.InvalidSignatureError:
        raise AssertionRefused(
            "client_assertion's signature matches none of the client's registered keys"
        ) from None
    except jwt.InvalidAudienceError:
        raise AssertionRefused(f"client_assertion's aud must be {token_endpoint}") from None
    except jwt.MissingRequiredClaimError as error:
        raise AssertionRefused(f"client_assertion lacks the {error.claim!r} claim") from None
    except jwt.InvalidTokenError as error:
        raise AssertionRefused(f"client_assertion is not valid: {error}") from None
    if claims["exp"] > time.time() + max_lifetime + LEEWAY_SECONDS:
        raise AssertionRefused(
            f"client_assertion's exp is more than {max_lifetime} s in the future"
        )
    return claims


def _key_for(identity: Identity, header: dict[str, Any]) -> Any:
    """Return the registered public key an assertion names by `kid` (or the only one)."""
    keys = (identity.jwks or {}).get("keys", [])
    if not keys:
        raise AssertionRefused("the client has no registered public key: use client_secret")
    kid = header.get("kid")
    family = "RSA" if header["alg"].startswith("RS") else "EC"
    candidates = [
        k for k in keys if k.get("kty") == family and (kid is None or k.get("kid") == kid)
    ]
    if kid is None and len(candidates) > 1:
        raise AssertionRefused("the client has several keys: name one with kid in the header")
    if not candidates:
        raise AssertionRefused(f"no registered {family} key of the client has kid {kid!r}")
    try:
        return jwt.PyJWK(candidates[0], algorithm=header["alg"]).key
    except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
        message = f"the registered key cannot check {header['alg']}: {error}"
        raise AssertionRefused(message) from None


class UsedAssertions:
    """The `used_assertions` collection: one document per assertion used, kept until its exp
    (a TTL index removes it after)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[USED_ASSERTIONS]

    async def ensure_indexes(self) -> None:
        """Let the database delete a used assertion's record once the assertion has expired."""
        await self.collection.create_index(
            [("expires", ASCENDING)], name="expires", expireAfterSeconds=0
        )

    async def use(self, client_id: str, jti: str, expires: float) -> None:
        """Record an assertion's use; refuse one already used that has not yet expired."""
        key = f"{client_id} {jti}"
        when = datetime.fromtimestamp(expires + LEEWAY_SECONDS, UTC)
        try:
            await self.collection.insert_one({"_id": key, "expires": when})
            return
        except DuplicateKeyError:
            pass
        # A record the TTL monitor has not removed yet does not hold back a new assertion.
        replaced = await self.collection.replace_one(
            {"_id": key, "expires": {"$lt": datetime.now(UTC)}}, {"expires": when}
        )
        if replaced.matched_count == 0:
            raise AssertionRefused(f"client_assertion jti {jti!r} was already used")
