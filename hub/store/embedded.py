"""Run the embedded MongoDB-wire database (SecantusDB) as a child process of the hub.

On disk it requires authentication (SCRAM-SHA-256): only the hub, which holds the password in
a file of the data folder that only its user may read, reaches the records. The first start
on a folder creates that user; during that one start the server accepts no connection but
the hub's own, proven by a client certificate made for the occasion (mutual TLS), so there is
no moment in which another local user could connect unauthenticated.
"""

import atexit
import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

MEMORY = ":memory:"
# Inside a hub's data folder (EHRHUB_DATA_DIR): the database files and the server's log.
HUB_DB_DIR = "db"
HUB_DB_LOG = "db.log"
# Loopback only, and on disk with authentication: the embedded database serves this machine's
# hub and no one else.
HOST = "127.0.0.1"
LOG_NAME = "secantus.log"
# The hub's database user, and its password in this file of the database folder (mode 0600).
USER = "ehrhub"
CREDENTIALS_NAME = "hub-credentials.json"
# What the hub does: read and write its databases, manage their indexes, read serverStatus.
# Not root: the hub creates no users.
USER_ROLES = ["readWriteAnyDatabase", "dbAdminAnyDatabase", "clusterMonitor"]
PASSWORD_BYTES = 32
OWNER_ONLY_FILE = 0o600
OWNER_ONLY_FOLDER = 0o700
_AUTHENTICATION_FAILED = 18
# The provisioning start's certificates: used for a few seconds, then deleted.
_CERTIFICATE_MINUTES = 60
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
        credentials_file: Path | None = None,
    ) -> None:
        # None stands for the ephemeral store, which lives only as long as the server: it has
        # no users (a restart, which enabling authentication takes, would lose them).
        self.data_dir = None if str(data_dir) == MEMORY else Path(data_dir)
        self.credentials_file = None
        if self.data_dir is not None:
            self.credentials_file = credentials_file or self.data_dir / CREDENTIALS_NAME
        self._password: str | None = None
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
        """Return the connection string while the server runs, with the hub's credentials
        when it requires them."""
        if self._process is None:
            return None
        return with_credentials(self._address(), self._password)

    def _address(self) -> str:
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
            if self.credentials_file is not None:
                self._password = read_credentials(self.credentials_file)
        try:
            if self.credentials_file is not None and self._password is None:
                self._provision(self.credentials_file)
            with self._lock:
                self._spawn(["--auth"] if self._password else [])
            self._wait_until_ready(str(self.uri))
        except BaseException:
            self.stop()
            raise
        return str(self.uri)

    def _provision(self, credentials_file: Path) -> None:
        """Give the store the hub's user with a new password, then keep the password in
        `credentials_file` (mode 0600). The server runs meanwhile without authentication but
        accepts only TLS clients holding a certificate of a throw-away authority made here,
        which only this process has: no one else can connect before the user exists."""
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        folder = Path(tempfile.mkdtemp(prefix="ehrhub-provision-"))  # mode 0700
        try:
            tls = _provisioning_certificates(folder)
            with self._lock:
                self._spawn(
                    [
                        "--tls-cert-file", str(tls["server"]),
                        "--tls-key-file", str(tls["server_key"]),
                        "--tls-ca-file", str(tls["ca"]),
                        "--tls-require-client-cert",
                    ]
                )  # fmt: skip
            options: dict[str, Any] = {
                "tls": True,
                "tlsCAFile": str(tls["ca"]),
                "tlsCertificateKeyFile": str(tls["client"]),
            }
            self._wait_until_ready(self._address(), **options)
            client: MongoClient[dict[str, Any]]
            with MongoClient(self._address(), **options) as client:
                _set_user(client, password)
            self._end_process()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        write_credentials(credentials_file, password)
        self._password = password

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers; do nothing if it is not running."""
        with self._lock:
            self._end_process()
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

    def _end_process(self) -> None:
        """Stop the server process, if one runs: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self, options: list[str]) -> None:
        """Launch the server process with these options and its output going to the log."""
        if self.data_dir is not None:
            # The store's files hold every record: the hub's user alone may read them.
            self.data_dir.mkdir(mode=OWNER_ONLY_FOLDER, parents=True, exist_ok=True)
            if self.data_dir.stat().st_uid == os.geteuid():
                self.data_dir.chmod(OWNER_ONLY_FOLDER)
        if self.log_file is None:
            if self.data_dir is not None:
                self.log_file = self.data_dir / LOG_NAME
            else:
                handle, name = tempfile.mkstemp(prefix="ehrhub-secantus-", suffix=".log")
                os.close(handle)
                self.log_file = Path(name)
                self._temporary_log = True
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            descriptor = os.open(
                self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, OWNER_ONLY_FILE
            )
            with contextlib.suppress(OSError):  # a log of an earlier hub, readable by others
                os.fchmod(descriptor, OWNER_ONLY_FILE)
            self._log = os.fdopen(descriptor, "ab")
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
            *options,
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

    def _wait_until_ready(self, uri: str, **options: Any) -> None:
        """Wait until the server we started answers at `uri`, or fail with the tail of its
        log; fail at once if it refuses the hub's credentials."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self.timeout
        client: MongoClient[dict[str, object]] = MongoClient(
            uri,
            serverSelectionTimeoutMS=_PING_TIMEOUT_MS,
            connectTimeoutMS=_PING_TIMEOUT_MS,
            **options,
        )
        try:
            while True:
                code = process.poll()
                if code is not None:
                    raise EmbeddedDatabaseError(
                        f"the embedded database exited during start-up (exit code {code})"
                        f"{self._log_tail()}"
                    )
                try:
                    # Another server may hold the port until ours fails to bind: check it is ours.
                    if client.admin.command("serverStatus").get("pid") == process.pid:
                        return
                except OperationFailure as error:
                    if error.code == _AUTHENTICATION_FAILED:
                        raise EmbeddedDatabaseError(
                            f"the embedded database refused the hub's credentials in "
                            f"{self.credentials_file} (its users were changed, or the file is "
                            f"another store's): remove that file and start again, and the hub "
                            f"sets a new password"
                        ) from None
                except PyMongoError:
                    pass
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
    """Write where the embedded database of this data folder answers (without its
    credentials, which stay in their own file); return the file."""
    path = folder / ADDRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    address = with_credentials(uri, None)
    temporary.write_text(json.dumps({"uri": address, "pid": pid, "hub_pid": os.getpid()}))
    temporary.replace(path)
    return path


def withdraw_address(folder: Path) -> None:
    """Remove the address file of a data folder, if this process wrote it."""
    path = folder / ADDRESS_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("hub_pid") == os.getpid():
            path.unlink()


def running_address(folder: Path) -> str | None:
    """Return the URI (with the hub's credentials) of the embedded database a running hub holds
    for this data folder, when its address file names a live server that answers as that
    process; None otherwise."""
    try:
        address = json.loads((folder / ADDRESS_FILE).read_text())
        uri, pid = str(address["uri"]), int(address["pid"])
        uri = with_credentials(uri, read_credentials(folder / HUB_DB_DIR / CREDENTIALS_NAME))
    except (OSError, ValueError, KeyError, TypeError, EmbeddedDatabaseError):
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


def read_credentials(path: Path) -> str | None:
    """Return the hub's database password kept in `path`, or None if there is no such file;
    refuse a file that group or others may read."""
    try:
        mode = path.stat().st_mode
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise EmbeddedDatabaseError(
            f"cannot read the database credentials {path}: {error}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EmbeddedDatabaseError(
            f"the database credentials {path} have mode {stat.S_IMODE(mode):04o}: make them the "
            f"hub's alone (chmod 600 {path})"
        )
    password = document.get("password") if isinstance(document, dict) else None
    if not isinstance(password, str) or not password:
        raise EmbeddedDatabaseError(f"{path} holds no password: remove it and start again")
    return password


def write_credentials(path: Path, password: str) -> None:
    """Keep the hub's database password in `path`, readable by this user only (mode 0600)."""
    path.parent.mkdir(mode=OWNER_ONLY_FOLDER, parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    with os.fdopen(handle, "w") as file:
        json.dump({"user": USER, "password": password}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(name, path)


def with_credentials(uri: str, password: str | None) -> str:
    """Return a mongodb:// URI carrying the hub's user and password (none: no credentials)."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    options = [(k, v) for k, v in parse_qsl(parts.query) if k != "authSource"]
    if password is None:
        return urlunsplit(parts._replace(netloc=host, query=urlencode(options)))
    netloc = f"{quote(USER, safe='')}:{quote(password, safe='')}@{host}"
    query = urlencode([*options, ("authSource", "admin")])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redacted(uri: str) -> str:
    """Return a URI fit to print: its password, if any, replaced by ***."""
    parts = urlsplit(uri)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return uri
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}"))


def _set_user(client: MongoClient[dict[str, Any]], password: str) -> None:
    """Create the hub's user with this password, or give the existing one this password."""
    found = client.admin.command("usersInfo", USER).get("users")
    command = "updateUser" if found else "createUser"
    client.admin.command(command, USER, pwd=password, roles=USER_ROLES)


def _provisioning_certificates(folder: Path) -> dict[str, Path]:
    """Make a throw-away certificate authority, a server certificate for the loopback address
    and a client certificate, in `folder`; return their files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        name: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> bytes:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ehrhub-provision")]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(minutes=_CERTIFICATE_MINUTES))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if name == "server":
            address = x509.IPAddress(ipaddress.ip_address(HOST))
            builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
        return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def private(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    authority, server, client = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    files = {
        "ca": certificate("ehrhub-provision", authority, authority, ca=True),
        "server": certificate("server", server, authority, ca=False),
        "server_key": private(server),
        "client": certificate("ehrhub", client, authority, ca=False) + private(client),
    }
    paths = {}
    for name, content in files.items():
        path = folder / f"{name}.pem"
        path.touch(mode=OWNER_ONLY_FILE)
        path.write_bytes(content)
        paths[name] = path
    return paths
