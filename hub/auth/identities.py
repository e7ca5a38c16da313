"""Identities: the clients and people who may call the hub, and their repository."""

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from hub.auth.passwords import hash_secret, new_secret
from hub.auth.roles import Role

if TYPE_CHECKING:
    from hub.settings import Settings

IDENTITIES = "identities"
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_PRACTITIONER = re.compile(r"Practitioner/[A-Za-z0-9\-.]{1,64}|[^\s|]+\|[^\s|]+")
# SMART Backend Services: clients sign their assertions with RS384 or ES384.
ASSERTION_KEY_TYPES = ("RSA", "EC")


class IdentityError(ValueError):
    """An identity that cannot be created as asked; the message says which field and why."""


@dataclass(frozen=True)
class Identity:
    """A client or person known to the hub. Only hashes of its secret and password are kept."""

    client_id: str
    role: Role
    created: datetime
    secret_hash: str = field(repr=False)
    name: str | None = None
    # The facility code the identity acts for (facility systems and clinicians).
    facility: str | None = None
    # A clinician's Practitioner: "Practitioner/<id>" or an identifier "system|value".
    practitioner: str | None = None
    # A patient's national citizen ID.
    patient: str | None = None
    # People log in with a username and password; lower case, unique.
    username: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    revoked_at: datetime | None = None
    # Public keys (a JWKS) for SMART private_key_jwt client authentication.
    jwks: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def revoked(self) -> bool:
        """Tell whether the identity was revoked: it gets no token, and its tokens stop."""
        return self.revoked_at is not None

    def public(self) -> dict[str, Any]:
        """Return the identity without its secret or password hashes, as JSON-ready values."""
        shown = {k: v for k, v in asdict(self).items() if k not in ("secret_hash", "password_hash")}
        shown["role"] = str(self.role)
        shown["created"] = self.created.isoformat()
        shown["revoked_at"] = self.revoked_at.isoformat() if self.revoked_at else None
        shown["jwks"] = bool(self.jwks)
        return shown

    def to_document(self) -> dict[str, Any]:
        """Return the stored document; absent values are left out so the username index holds
        only usernames."""
        document = {k: v for k, v in asdict(self).items() if v is not None}
        document["_id"] = document.pop("client_id")
        document["role"] = str(self.role)
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Identity":
        """Read a stored document back."""
        # Fields a newer hub added are left for that hub to read.
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in document.items() if k in known}
        return cls(**{**values, "client_id": document["_id"], "role": Role(values["role"])})


def new_identity(
    role: Role,
    *,
    facility: str | None = None,
    name: str | None = None,
    username: str | None = None,
    patient: str | None = None,
    practitioner: str | None = None,
    jwks: dict[str, Any] | None = None,
    password: str | None = None,
) -> tuple[Identity, str]:
    """Check the fields a role needs and return a new identity with its secret (shown once).
    A person with a username logs in with `password`, or with the secret when none is given."""
    _check(role, facility, username, patient, practitioner, password)
    if jwks is not None:
        check_jwks(jwks)
    secret = new_secret()
    secret_hash = hash_secret(secret)
    login = username.lower() if username else None
    password_hash = None
    if login:
        password_hash = secret_hash if password is None else hash_secret(password)
    identity = Identity(
        client_id=f"{role}-{secrets.token_hex(8)}",
        role=role,
        created=datetime.now(UTC),
        secret_hash=secret_hash,
        name=name,
        facility=facility,
        practitioner=practitioner,
        patient=patient,
        username=login,
        password_hash=password_hash,
        jwks=jwks,
    )
    return identity, secret


def _check(
    role: Role,
    facility: str | None,
    username: str | None,
    patient: str | None,
    practitioner: str | None,
    password: str | None,
) -> None:
    needs_facility = role in (Role.FACILITY, Role.CLINICIAN)
    if needs_facility and not facility:
        raise IdentityError(f"a {role} needs --facility, the code of the facility it acts for")
    if not needs_facility and facility:
        raise IdentityError(f"a {role} acts for no facility: leave out --facility")
    if facility and not _CODE.fullmatch(facility):
        raise IdentityError(
            f"--facility {facility!r} is not a facility code (letters, digits, . _ -; up to 64)"
        )
    if role is Role.PATIENT and not patient:
        raise IdentityError("a patient needs --patient, their national citizen ID")
    if role is not Role.PATIENT and patient:
        raise IdentityError(f"--patient is for the patient role, not {role}")
    if patient and not _CODE.fullmatch(patient):
        raise IdentityError(f"--patient {patient!r} is not a citizen ID (letters and digits)")
    if practitioner and role is not Role.CLINICIAN:
        raise IdentityError(f"--practitioner is for the clinician role, not {role}")
    if practitioner and not _PRACTITIONER.fullmatch(practitioner):
        raise IdentityError(
            f"--practitioner {practitioner!r} is neither Practitioner/<id> nor system|value"
        )
    if username is not None and not role.is_person:
        raise IdentityError(f"a {role} is a system, not a person: it has no --username")
    if username is not None and not _USERNAME.fullmatch(username.lower()):
        raise IdentityError(
            f"--username {username!r}: use letters, digits and . _ @ - (up to 64), "
            "starting with a letter or digit"
        )
    if password is not None and username is None:
        raise IdentityError("a password is for logging in: give a --username too")
    if password is not None and len(password) < 12:
        raise IdentityError("the password must be at least 12 characters long")


def check_jwks(jwks: Any) -> None:
    """Refuse a key set that is not public RSA or EC keys a client can sign assertions with."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise IdentityError('the JWKS must be a JSON object {"keys": [...]} with at least one key')
    for n, key in enumerate(keys):
        if not isinstance(key, dict) or key.get("kty") not in ASSERTION_KEY_TYPES:
            raise IdentityError(f"JWKS keys[{n}]: only RSA and EC keys are accepted")
        if "d" in key:
            raise IdentityError(f"JWKS keys[{n}] holds a private key: register the public key")
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as error:
            raise IdentityError(f"JWKS keys[{n}] is not a usable key: {error}") from None


class Identities:
    """The `identities` collection: only this class reads or writes it."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[IDENTITIES]

    async def ensure_indexes(self) -> None:
        """Make usernames unique; identities without one are left out of the index."""
        await self.collection.create_index(
            [("username", ASCENDING)], name="username", unique=True, sparse=True
        )

    async def create(self, identity: Identity) -> Identity:
        """Store a new identity; refuse a username already taken."""
        try:
            await self.collection.insert_one(identity.to_document())
        except DuplicateKeyError:
            raise IdentityError(f"the username {identity.username!r} is taken") from None
        return identity

    async def get(self, client_id: str) -> Identity | None:
        """Return the identity with this client id, revoked or not."""
        document = await self.collection.find_one({"_id": client_id})
        return None if document is None else Identity.from_document(document)

    async def by_username(self, username: str) -> Identity | None:
        """Return the person with this username, revoked or not."""
        document = await self.collection.find_one({"username": username.lower()})
        return None if document is None else Identity.from_document(document)

    async def all(self) -> list[Identity]:
        """Return every identity, oldest first."""
        cursor = self.collection.find({}).sort([("created", ASCENDING), ("_id", ASCENDING)])
        return [Identity.from_document(document) async for document in cursor]

    async def revoke(self, client_id: str) -> Identity | None:
        """Revoke an identity now (kept for the audit trail); return it, or None if unknown.
        Revoking twice keeps the first time."""
        identity = await self.get(client_id)
        if identity is None or identity.revoked:
            return identity
        when = datetime.now(UTC)
        await self.collection.update_one(
            {"_id": client_id, "revoked_at": None}, {"$set": {"revoked_at": when}}
        )
        return replace(identity, revoked_at=when)


@asynccontextmanager
async def identities_at(uri: str, settings: "Settings") -> AsyncIterator[Identities]:
    """Open the identities of the hub database at `uri` for a command run outside the hub
    (`ehrhub admin`, the demo's credentials), and close the connection afterwards."""
    from pymongo import AsyncMongoClient

    timeout_ms = int(settings.database_timeout_seconds * 1000)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms
    )
    try:
        identities = Identities(client[settings.database])
        await identities.ensure_indexes()
        yield identities
    finally:
        await client.close()
