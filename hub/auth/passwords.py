"""Secrets and passwords: generated, hashed with argon2id, verified; never logged or stored."""

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# 32 random bytes: as strong as the token-signing key, and short enough to paste.
SECRET_BYTES = 32

# argon2-cffi's defaults are RFC 9106's low-memory profile of argon2id.
_hasher = PasswordHasher()


def new_secret() -> str:
    """Return a new random client secret, URL-safe."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """Return the argon2id hash of a secret or password, salted, in PHC string form."""
    return _hasher.hash(secret)


def verify_secret(hashed: str | None, secret: str) -> bool:
    """Tell whether a secret matches its hash; without a hash, spend the same time and say no,
    so that an unknown client or user cannot be told from a wrong secret by timing."""
    try:
        return _hasher.verify(hashed or _decoy(), secret) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _decoy() -> str:
    return _hasher.hash(new_secret())
