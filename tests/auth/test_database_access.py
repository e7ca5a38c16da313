"""Only the hub reaches the embedded database: authentication with a password only the hub's user
may read, no unauthenticated moment while that user is made, and files of the hub's alone."""

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from hub.store import embedded
from hub.store.embedded import (
    CREDENTIALS_NAME,
    HOST,
    LOG_NAME,
    USER,
    EmbeddedMongo,
    redacted,
    with_credentials,
)

UNAUTHORIZED = 13


def mode_of(path: Path) -> int:
    """Return a file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def anonymous(port: int, **options: object) -> MongoClient[dict[str, object]]:
    """Return a client of the port without credentials, as another local user would connect."""
    return MongoClient(
        f"mongodb://{HOST}:{port}/?directConnection=true",
        serverSelectionTimeoutMS=200,
        connectTimeoutMS=200,
        **options,  # type: ignore[arg-type]
    )


def test_the_embedded_database_answers_only_the_hub(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "db")
    with server:
        assert server.uri is not None and server.port is not None
        with MongoClient(server.uri) as hub:
            hub.records.things.insert_one({"_id": "secret"})
        with anonymous(server.port) as intruder:
            with pytest.raises(OperationFailure) as refused:
                intruder.records.things.find_one()
            assert refused.value.code == UNAUTHORIZED
            with pytest.raises(OperationFailure):
                intruder.admin.command("createUser", "intruder", pwd="x" * 16, roles=["root"])
        password = json.loads((tmp_path / "db" / CREDENTIALS_NAME).read_text())["password"]
        assert password in server.uri and password not in redacted(server.uri)

    credentials = tmp_path / "db" / CREDENTIALS_NAME
    assert json.loads(credentials.read_text())["user"] == USER
    assert mode_of(credentials) == 0o600
    assert mode_of(tmp_path / "db") == 0o700, "the store's files are the hub's alone"
    assert mode_of(tmp_path / "db" / LOG_NAME) == 0o600


def test_no_one_gets_in_while_the_hubs_user_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a new folder the server first runs without authentication to get its user. Right
    then, while the hub makes it, another local user connecting to the port (plain, or TLS
    without the hub's client certificate) gets no command through."""
    attempts: dict[str, str] = {}
    make_user = embedded._set_user

    def intrude_then_make_user(hub: MongoClient[dict[str, Any]], password: str) -> None:
        host, port = hub.address or (HOST, 0)
        for name, options in {
            "plain": {},
            "tls without the hub's certificate": {"tls": True, "tlsAllowInvalidCertificates": True},
        }.items():
            try:
                with anonymous(port, **options) as intruder:
                    intruder.admin.command("createUser", "intruder", pwd="x" * 16, roles=[])
                attempts[name] = "got in"
            except PyMongoError as error:
                attempts[name] = f"refused: {type(error).__name__}"
        make_user(hub, password)

    monkeypatch.setattr(embedded, "_set_user", intrude_then_make_user)
    server = EmbeddedMongo(tmp_path / "db")
    with server:
        assert server.port is not None
        intruders = f"mongodb://intruder:{'x' * 16}@{HOST}:{server.port}/?directConnection=true"
        with MongoClient(intruders, serverSelectionTimeoutMS=2000) as late:
            with pytest.raises(OperationFailure, match="[Aa]uthentication failed"):
                late.records.things.find_one()

    assert set(attempts) == {"plain", "tls without the hub's certificate"}, "no provisioning ran"
    assert all(outcome.startswith("refused") for outcome in attempts.values()), attempts


def test_a_restart_keeps_the_password_and_a_lost_one_is_replaced(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "db")
    credentials = tmp_path / "db" / CREDENTIALS_NAME
    with server, MongoClient(server.uri) as hub:
        hub.records.things.insert_one({"_id": "kept"})
    first = credentials.read_text()
    with server, MongoClient(server.uri) as hub:
        assert hub.records.things.find_one({"_id": "kept"}) is not None
    assert credentials.read_text() == first

    credentials.unlink()
    with server, MongoClient(server.uri) as hub:
        assert hub.records.things.find_one({"_id": "kept"}) is not None
        old = with_credentials(server.uri, json.loads(first)["password"])
        with MongoClient(old, serverSelectionTimeoutMS=2000) as stale:
            with pytest.raises(OperationFailure):
                stale.records.things.find_one()
    assert credentials.read_text() != first and mode_of(credentials) == 0o600


def test_credentials_others_may_read_are_refused(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db"):
        pass
    (tmp_path / "db" / CREDENTIALS_NAME).chmod(0o644)

    with pytest.raises(RuntimeError, match=r"mode 0644.*chmod 600"):
        EmbeddedMongo(tmp_path / "db").start()
