"""The keys that sign the hub's tokens: a file of the hub's own, never the database.

    {"signer": "<kid>", "keys": [{"kid": "<kid>", "secret": "<base64>", "created": "..."}]}

One key signs; every key in the file verifies, so that a rotation (`ehrhub admin rotate-key`)
keeps the tokens signed before it working until their key is removed. Running hub processes
read the file again when it changes, so a rotation needs no restart.
"""

import base64
import contextlib
import fcntl
import json
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("ehrhub.keys")

KEY_BYTES = 64
KID_BYTES = 8
# Group and others may do nothing with the file: whoever reads it can mint any token.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
FILE_MODE = 0o600
FOLDER_MODE = 0o700


class KeyFileError(RuntimeError):
    """The token key file cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class SigningKey:
    """One HS256 key and its id (the `kid` of the tokens it signs)."""

    kid: str
    secret: bytes
    created: str

    def to_json(self) -> dict[str, str]:
        """Return the key as the file stores it."""
        return {
            "kid": self.kid,
            "secret": base64.b64encode(self.secret).decode(),
            "created": self.created,
        }


def new_key() -> SigningKey:
    """Return a fresh random key with a fresh id."""
    return SigningKey(
        secrets.token_hex(KID_BYTES),
        secrets.token_bytes(KEY_BYTES),
        datetime.now(UTC).isoformat(timespec="seconds"),
    )


@dataclass(frozen=True)
class KeySet:
    """The keys of one version of the file: the signer's id and every key by id."""

    signer: str
    keys: dict[str, SigningKey]

    @property
    def signing(self) -> SigningKey:
        """Return the key that signs new tokens."""
        return self.keys[self.signer]

    def to_json(self) -> dict[str, Any]:
        """Return the key set as the file stores it."""
        return {"signer": self.signer, "keys": [k.to_json() for k in self.keys.values()]}

    @classmethod
    def from_json(cls, document: Any, path: Path) -> "KeySet":
        """Read a key set, refusing a file that is not one (its message names the file)."""
        try:
            keys = {}
            for n, item in enumerate(document["keys"]):
                secret = base64.b64decode(item["secret"], validate=True)
                if len(secret) < 32:
                    raise ValueError(f"keys[{n}].secret is shorter than 32 bytes")
                keys[str(item["kid"])] = SigningKey(str(item["kid"]), secret, str(item["created"]))
            signer = str(document["signer"])
        except (KeyError, TypeError, ValueError) as error:
            raise KeyFileError(f"{path} is not a token key file: {error!r}") from None
        if signer not in keys:
            raise KeyFileError(f"{path}: the signer {signer!r} is not one of its keys")
        return cls(signer, keys)


def read_keys(path: Path) -> KeySet:
    """Read the key file, refusing one that group or others may read or write."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as error:
        raise KeyFileError(f"cannot read the token key file {path}: {error}") from None
    if mode & _OTHERS:
        raise KeyFileError(
            f"the token key file {path} has mode {stat.S_IMODE(mode):04o}: whoever reads it can "
            f"sign any token. Make it the hub's alone: chmod 600 {path}"
        )
    try:
        document = json.loads(text)
    except ValueError as error:
        raise KeyFileError(f"{path} is not a token key file: {error}") from None
    return KeySet.from_json(document, path)


def _write_new(path: Path, keys: KeySet) -> Path:
    """Write a key set to a new file of mode 0600 beside `path`; return the new file."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "w") as file:
            json.dump(keys.to_json(), file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def ensure_keys(path: Path) -> KeySet:
    """Return the key file's keys, creating it with one key if there is none yet; hub
    processes starting together keep the first one written."""
    if not path.exists():
        path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        key = new_key()
        fresh = _write_new(path, KeySet(key.kid, {key.kid: key}))
        try:
            os.link(fresh, path)  # never replaces a file another process made meanwhile
        except FileExistsError:
            pass
        except OSError as error:
            raise KeyFileError(f"cannot create the token key file {path}: {error}") from None
        finally:
            fresh.unlink(missing_ok=True)
    return read_keys(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the key file's lock while it is changed, so that two changes do not race."""
    lock = path.with_name(path.name + ".lock")
    handle = os.open(lock, os.O_CREAT | os.O_RDWR, FILE_MODE)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _replace(path: Path, keys: KeySet) -> None:
    os.replace(_write_new(path, keys), path)


def rotate(path: Path) -> SigningKey:
    """Add a new key that signs from now on; the others keep verifying. Return it."""
    with _locked(path):
        current = ensure_keys(path)
        key = new_key()
        _replace(path, KeySet(key.kid, current.keys | {key.kid: key}))
    return key


def remove(path: Path, kid: str) -> KeySet:
    """Remove a key that no longer signs: its tokens stop at once. Return what is left."""
    with _locked(path):
        current = read_keys(path)
        if kid not in current.keys:
            known = ", ".join(current.keys)
            raise KeyFileError(f"{path} holds no key {kid!r} (its keys: {known})")
        if kid == current.signer:
            raise KeyFileError(
                f"key {kid!r} signs the hub's tokens: rotate first (ehrhub admin rotate-key), "
                "then remove it once its tokens have expired"
            )
        left = KeySet(current.signer, {k: v for k, v in current.keys.items() if k != kid})
        _replace(path, left)
    return left


class Keyring:
    """The key file as a running hub sees it: read again whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys = ensure_keys(path)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def current(self) -> KeySet:
        """Return the keys, reading the file again if it changed since last read. A file
        that became unreadable leaves the last good keys in use (and is logged)."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            try:
                self._keys = read_keys(self.path)
            except KeyFileError as error:
                log.error("token keys unchanged: %s", error)
            self._seen = stamp
        return self._keys

    def signing(self) -> SigningKey:
        """Return the key that signs new tokens."""
        return self.current().signing

    def verifying(self, kid: str) -> bytes | None:
        """Return the secret of the key with this id, or None if the file holds none."""
        key = self.current().keys.get(kid)
        return None if key is None else key.secret
