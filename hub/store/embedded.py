"""Run the embedded MongoDB-wire database (SecantusDB) as a child process of the hub."""

import atexit
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from pymongo import MongoClient
from pymongo.errors import PyMongoError

MEMORY = ":memory:"
# Inside a hub's data folder (EHRHUB_DATA_DIR): the database files and the server's log.
HUB_DB_DIR = "db"
HUB_DB_LOG = "db.log"
# Loopback only: the embedded database has no authentication and serves this machine's hub.
HOST = "127.0.0.1"
LOG_NAME = "secantus.log"
_PR_SET_PDEATHSIG = 1
_PING_TIMEOUT_MS = 250
_ADDRESS_TIMEOUT_MS = 2000
_POLL_SECONDS = 0.1
_STOP_GRACE_SECONDS = 10.0
_LOG_TAIL_LINES = 20


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started."""


def port_is_free(host: str, port: int) -> bool:
    """Tell whether a TCP server could listen on host:port right now."""
    family, socktype, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, socktype, proto) as probe:
        # Same option as the servers use, so a port left in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """Return a TCP port on host that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """Return a pre-exec hook that makes the child die with this process (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    # The signal fires when the forking thread ends, so start the server from a thread that
    # lives as long as the hub (the main thread).
    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork and prctl; then no signal will ever come.
        if os.getppid() != parent:
            os._exit(1)

    return hook


class EmbeddedMongo:
    """Start, watch and stop a SecantusDB server listening on the loopback interface."""

    @classmethod
    def in_hub_folder(cls, folder: Path, timeout: float) -> "EmbeddedMongo":
        """Return the server of a hub's data folder: its files in `db`, its log in `db.log`,
        where `ehrhub serve` and `ehrhub admin` both look."""
        return cls(folder / HUB_DB_DIR, timeout=timeout, log_file=folder / HUB_DB_LOG)

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int | None = None,
        timeout: float = 30.0,
        log_file: Path | None = None,
    ) -> None:
        # None stands for the ephemeral store, which lives only as long as the server.
        self.data_dir = None if str(data_dir) == MEMORY else Path(data_dir)
        self.requested_port = port
        self.port = port
        self.timeout = timeout
        self.log_file = log_file
        self._temporary_log = False
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0
        self._lock = threading.Lock()

    @property
    def uri(self) -> str | None:
        """Return the connection string while the server runs."""
        if self._process is None:
            return None
        return f"mongodb://{HOST}:{self.port}/?directConnection=true"

    @property
    def pid(self) -> int | None:
        """Return the server's process id while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        """Start the server, wait until it answers, and return its URI."""
        with self._lock:
            if self._process is not None:
                return str(self.uri)
            if importlib.util.find_spec("secantus") is None:
                raise EmbeddedDatabaseError(
                    "the embedded database (SecantusDB) is not installed: install the 'embedded' "
                    "extra (pip install -e '.[embedded]') or set EHRHUB_MONGODB_URI to a MongoDB"
                )
            self.port = self.requested_port or free_port()
            if self.requested_port and not port_is_free(HOST, self.port):
                raise EmbeddedDatabaseError(
                    f"cannot start the embedded database: port {self.port} on {HOST} is already "
                    "in use"
                )
            self._spawn()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return str(self.uri)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers; do nothing if it is not running."""
        with self._lock:
            process, self._process = self._process, None
            if process is not None:
                atexit.unregister(self.stop)
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(_STOP_GRACE_SECONDS)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._temporary_log and self.log_file is not None:
                self.log_file.unlink(missing_ok=True)
                self.log_file = None
                self._temporary_log = False

    def __enter__(self) -> "EmbeddedMongo":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> None:
        """Launch the server process with its output going to the log file."""
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.log_file is None:
            if self.data_dir is not None:
                self.log_file = self.data_dir / LOG_NAME
            else:
                handle, name = tempfile.mkstemp(prefix="ehrhub-secantus-", suffix=".log")
                os.close(handle)
                self.log_file = Path(name)
                self._temporary_log = True
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        self._log_start = self._log.tell()
        command = [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--storage-path",
            MEMORY if self.data_dir is None else str(self.data_dir),
            "--log-level",
            "WARNING",
        ]
        # A new session keeps a terminal's Ctrl-C away from the database, so the hub can finish
        # its requests before it stops the database itself.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),
            start_new_session=True,
        )
        atexit.register(self.stop)

    def _wait_until_ready(self) -> None:
        """Wait until the server we started answers, or fail with the tail of its log."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self.timeout
        client: MongoClient[dict[str, object]] = MongoClient(
            str(self.uri),
            serverSelectionTimeoutMS=_PING_TIMEOUT_MS,
            connectTimeoutMS=_PING_TIMEOUT_MS,
        )
        try:
            while True:
                code = process.poll()
                if code is not None:
                    raise EmbeddedDatabaseError(
                        f"the embedded database exited during start-up (exit code {code})"
                        f"{self._log_tail()}"
                    )
                with contextlib.suppress(PyMongoError):
                    # Another server may hold the port until ours fails to bind: check it is ours.
                    if client.admin.command("serverStatus").get("pid") == process.pid:
                        return
                if time.monotonic() > deadline:
                    raise EmbeddedDatabaseError(
                        f"the embedded database did not answer on port {self.port} within "
                        f"{self.timeout:g} s{self._log_tail()}"
                    )
                time.sleep(_POLL_SECONDS)
        finally:
            client.close()

    def _log_tail(self) -> str:
        """Return the last lines of the server's log, ready to append to an error message."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        if self._log is not None:
            self._log.flush()
        with self.log_file.open("rb") as log:
            log.seek(self._log_start)
            lines = log.read().decode(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        # A temporary log is deleted on stop, so only a log that stays is named.
        where = "its log" if self._temporary_log else str(self.log_file)
        if not lines:
            return f"; {where} is empty"
        return f"; last lines of {where}:\n" + "\n".join(lines)


# While `ehrhub serve` runs the embedded database, it says where in this file of its data
# folder, so that `ehrhub admin` reaches the same database instead of starting a second server
# on the same files.
ADDRESS_FILE = "embedded.json"


def publish_address(folder: Path, uri: str, pid: int) -> Path:
    """Write where the embedded database of this data folder answers; return the file."""
    path = folder / ADDRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"uri": uri, "pid": pid, "hub_pid": os.getpid()}))
    temporary.replace(path)
    return path


def withdraw_address(folder: Path) -> None:
    """Remove the address file of a data folder, if this process wrote it."""
    path = folder / ADDRESS_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("hub_pid") == os.getpid():
            path.unlink()


def running_address(folder: Path) -> str | None:
    """Return the URI of the embedded database a running hub holds for this data folder, when
    its address file names a live server that answers as that process; None otherwise."""
    try:
        address = json.loads((folder / ADDRESS_FILE).read_text())
        uri, pid = str(address["uri"]), int(address["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return None
    except PermissionError:
        pass  # alive, owned by someone else: ask the server itself
    client: MongoClient[dict[str, object]] = MongoClient(
        uri, serverSelectionTimeoutMS=_ADDRESS_TIMEOUT_MS, connectTimeoutMS=_ADDRESS_TIMEOUT_MS
    )
    try:
        answered = client.admin.command("serverStatus").get("pid")
    except PyMongoError:
        return None
    finally:
        client.close()
    return uri if answered == pid else None
