"""Test the embedded database's life cycle: start, restart, stop, and never an orphan."""

import importlib.util
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import MongoClient
from support import wait_gone

from hub.store.embedded import HOST, LOG_NAME, MEMORY, EmbeddedDatabaseError, EmbeddedMongo

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0

# Starts the embedded database, says its pid, then dies the way `kill -9` kills.
KILLED_PARENT = """
import os, signal, sys
from hub.store.embedded import EmbeddedMongo
server = EmbeddedMongo(sys.argv[1])
server.start()
print(server.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "db")
    with server, MongoClient(server.uri) as client:
        client.hub.things.insert_one({"_id": "kept", "n": 1})
    assert server.uri is None and server.pid is None
    assert (tmp_path / "db" / LOG_NAME).exists()

    with server, MongoClient(server.uri) as client:
        assert client.hub.things.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}


def test_memory_store_runs_and_stop_is_idempotent() -> None:
    server = EmbeddedMongo(MEMORY)
    uri = server.start()
    pid, log = server.pid, server.log_file
    assert pid is not None and log is not None
    with MongoClient(uri) as client:
        assert client.admin.command("ping")["ok"] == 1

    server.stop()
    server.stop()

    assert wait_gone(pid)
    assert not log.exists(), "a temporary log must not outlive the server"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_kill_9_of_the_hub_kills_the_database(tmp_path: Path) -> None:
    parent = subprocess.run(
        [sys.executable, "-c", KILLED_PARENT, str(tmp_path / "db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )

    assert parent.returncode == -signal.SIGKILL, parent.stderr
    database_pid = int(parent.stdout.strip())
    assert wait_gone(database_pid), f"the database (pid {database_pid}) outlived its parent"


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(EmbeddedDatabaseError, match=f"port {port} on {HOST} is already in use"):
            EmbeddedMongo(MEMORY, port=port).start()


def test_second_server_on_the_same_folder_fails_with_its_log(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db") as first:
        second = EmbeddedMongo(tmp_path / "db", log_file=tmp_path / "second.log")

        with pytest.raises(EmbeddedDatabaseError, match="exited during start-up") as failure:
            second.start()

        assert f"last lines of {tmp_path / 'second.log'}" in str(failure.value)
        assert second.pid is None
        with MongoClient(first.uri) as client:
            assert client.admin.command("ping")["ok"] == 1


def test_missing_secantus_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    with pytest.raises(EmbeddedDatabaseError, match=r"\.\[embedded\].*EHRHUB_MONGODB_URI"):
        EmbeddedMongo(MEMORY).start()
