"""Run the hub and talk to it from the command line (`ehrhub`)."""

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from adapters.sync import cli as sync_cli
from adapters.sync import mllp as mllp_cli
from hub import __version__
from hub.auth import cli as admin_cli
from hub.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from hub.auth.demo import DemoCredential
    from hub.store.embedded import EmbeddedMongo

FHIR_PATH = "/fhir"
FHIR_JSON = "application/fhir+json"
LINKS = (
    ("hub", ""),
    ("FHIR base", FHIR_PATH),
    ("capabilities", f"{FHIR_PATH}/metadata"),
    ("patients", f"{FHIR_PATH}/Patient/_history"),
    ("API docs", "/docs"),
    ("liveness", "/healthz"),
    ("readiness", "/readyz"),
)
# Generous: a transaction of thousands of entries is one request.
HTTP_TIMEOUT_SECONDS = 300.0
# The name of the facility clients that `--load-sample` registers, to find them again.
SAMPLE_CLIENT_NAME = "sample"
NO_AUTH_WARNING = """\
!!! WARNING: EHRHUB_AUTH_REQUIRED is false: this hub answers FHIR requests WITHOUT A TOKEN,
!!! and such a request reads and writes every record of every facility. This is for local
!!! development only: never let anyone else reach this hub."""
READY_POLL_SECONDS = 0.2
MAX_PORT = 65535


class CliError(Exception):
    """A failure to report on stderr, exiting with status 1."""


class UsageError(CliError):
    """A command line or setting that cannot work, exiting with status 2."""


class StopRequested(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C does, running every cleanup on the way."""


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        command: Callable[[argparse.Namespace], int] = args.command
        return command(args)
    except ValidationError as error:
        for problem in error.errors():
            name = ".".join(str(part) for part in problem["loc"])
            print(
                f"ehrhub: invalid setting {name} (EHRHUB_{name.upper()}): {problem['msg']}, "
                f"got {problem.get('input')!r}",
                file=sys.stderr,
            )
        return 2
    except UsageError as error:
        print(f"ehrhub: {error}", file=sys.stderr)
        return 2
    except CliError as error:
        print(f"ehrhub: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `ehrhub` and its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="ehrhub", description="EHR Hub: a FHIR R4 interoperability hub on MongoDB."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve_parser = commands.add_parser(
        "serve",
        help="run the hub (with an embedded database when no MongoDB URI is given)",
        description="Run the hub. Flags override the EHRHUB_* environment variables.",
    )
    _hub_flags(serve_parser)
    serve_parser.add_argument(
        "--load-sample",
        action="store_true",
        help="once the hub is ready, send it a few synthetic patients (safe to repeat)",
    )
    serve_parser.set_defaults(command=serve)

    demo_parser = commands.add_parser(
        "demo",
        help="run the hub and fill it from simulated hospitals (XML130, HL7 v2, CSV)",
        description="Run the hub as `serve` does; once it is ready, synthetic facilities across "
        "provinces and levels write their native exports and sync them through the real "
        "adapters, then a few send new visits every --live-seconds. Safe to run again on the "
        "same data: the records are matched, not duplicated.",
    )
    _hub_flags(demo_parser)
    demo_parser.add_argument(
        "--facilities", type=int, default=24, help="number of facilities (default 24)"
    )
    demo_parser.add_argument(
        "--scale", type=float, default=1.0, help="visits per facility, as a multiple (default 1)"
    )
    demo_parser.add_argument("--seed", type=int, default=1, help="same seed, same data")
    demo_parser.add_argument(
        "--days", type=int, default=90, help="the backfill covers this many past days"
    )
    demo_parser.add_argument(
        "--until",
        type=date.fromisoformat,
        help="last day of the backfill, YYYY-MM-DD (default: today)",
    )
    demo_parser.add_argument(
        "--live-seconds",
        type=float,
        default=60.0,
        help="after the backfill, new visits every this many seconds (0: none)",
    )
    demo_parser.add_argument(
        "--workers", type=int, default=4, help="facilities syncing at the same time"
    )
    # An access-log line per request would bury the demo's own lines.
    demo_parser.set_defaults(command=demo, load_sample=False, access_log=False)

    load_parser = commands.add_parser(
        "load",
        help="send FHIR transaction or batch Bundles from JSON files to a running hub",
        description="Post each file to the hub's FHIR base and print the answer's status.",
    )
    load_parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    load_parser.add_argument(
        "--hub", help="the hub's base URL (default: from EHRHUB_HOST and EHRHUB_PORT)"
    )
    load_parser.add_argument(
        "--client-id", help="OAuth client id of a facility client (EHRHUB_SYNC_CLIENT_ID)"
    )
    load_parser.add_argument("--client-secret", help="its secret (EHRHUB_SYNC_CLIENT_SECRET)")
    load_parser.set_defaults(command=load)

    sync_cli.add_parser(commands)
    commands.choices["sync"].set_defaults(command=sync)
    mllp_cli.add_parser(commands)
    commands.choices["mllp"].set_defaults(command=mllp)

    admin_cli.add_parser(commands)

    version_parser = commands.add_parser("version", help="print the hub's version")
    version_parser.set_defaults(command=print_version)
    return parser


def _hub_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags of a command that runs the hub."""
    parser.add_argument("--host", help="address to listen on (EHRHUB_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (EHRHUB_PORT)")
    parser.add_argument(
        "--mongodb-uri", help="MongoDB to use; none starts the embedded one (EHRHUB_MONGODB_URI)"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="folder of the embedded database (EHRHUB_DATA_DIR)"
    )


def _hub_settings(args: argparse.Namespace) -> Settings:
    """Return the settings, with the command line's flags over the environment's."""
    overrides = {
        name: value
        for name in ("host", "port", "mongodb_uri", "data_dir")
        if (value := getattr(args, name)) is not None
    }
    return Settings(**overrides)


def demo(args: argparse.Namespace) -> int:
    """Run the hub and the simulated hospitals that fill it."""
    from adapters.simulate.demo import DemoOptions
    from adapters.simulate.demo import start as start_demo
    from adapters.simulate.facilities import facilities

    if args.facilities < 1 or args.scale <= 0 or args.days < 1 or args.workers < 1:
        raise UsageError("--facilities, --days and --workers must be at least 1, --scale above 0")
    options = DemoOptions(
        folder=_hub_settings(args).data_dir / "demo",
        facilities=args.facilities,
        scale=args.scale,
        seed=args.seed,
        days=args.days,
        until=args.until,
        workers=args.workers,
        live_seconds=args.live_seconds,
    )
    codes = [f.code for f in facilities(options.facilities, options.seed, options.scale)]

    def beside(base: str, stopping: threading.Event, settings: Settings) -> threading.Thread:
        from hub.auth.demo import issue

        clients, people = issue(settings.mongodb_uri or "", settings, codes)
        save_credentials(options.folder / "credentials.json", [*clients.values(), *people])
        print_logins(base, people, options.folder / "credentials.json")
        credentials = {code: (c.client_id, c.secret) for code, c in clients.items()}
        started = replace(options, clients=credentials)
        return start_demo(base, started, stopping)

    return serve(args, beside)


def save_credentials(path: Path, credentials: "list[DemoCredential]") -> None:
    """Write the demo's credentials where only this user can read them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps([c.as_json() for c in credentials], indent=2) + "\n")


def print_logins(base: str, people: "list[DemoCredential]", path: Path) -> None:
    """Print the demo's logins: username and password (POST /auth/login) per role."""
    lines = [f"  {p.role:<10} {p.username}  {p.secret}" for p in people]
    print(
        f"demo logins (POST {base}/auth/login with username and password; every facility's "
        f"client in {path}):\n" + "\n".join(lines),
        flush=True,
    )


def serve(
    args: argparse.Namespace,
    beside: Callable[[str, threading.Event, Settings], threading.Thread] | None = None,
) -> int:
    """Run the hub until Ctrl-C or SIGTERM, with the embedded database if no URI is set;
    `beside` starts work that runs next to the hub (the sample loader, the demo)."""
    settings = _hub_settings(args)
    if not 0 < settings.port <= MAX_PORT:
        raise UsageError(f"port {settings.port} is not between 1 and {MAX_PORT}")
    base = local_url(settings.host, settings.port)
    if not settings.auth_required:
        print(NO_AUTH_WARNING, file=sys.stderr, flush=True)
    stopping = threading.Event()
    previous_handler = signal.signal(signal.SIGTERM, _request_stop)
    embedded: EmbeddedMongo | None = None
    try:
        if not _can_listen(settings.host, settings.port):
            raise CliError(
                f"cannot listen on {settings.host}:{settings.port}: the port is in use or the "
                "address is not this machine's (choose another with --port or EHRHUB_PORT)"
            )
        if not settings.mongodb_uri:
            embedded = start_embedded(settings)
            settings.mongodb_uri = embedded.uri
        print_links(base)
        if args.load_sample:
            threading.Thread(
                target=load_sample,
                args=(base, stopping, settings),
                name="load-sample",
                daemon=True,
            ).start()
        if beside is not None:
            beside(base, stopping, settings)
        run_hub(settings, access_log=getattr(args, "access_log", True))
    except (StopRequested, KeyboardInterrupt):
        pass
    finally:
        stopping.set()
        # A second SIGTERM must not cut the database's shutdown short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if embedded is not None:
            _withdraw_address(settings)
            embedded.stop()
        signal.signal(signal.SIGTERM, previous_handler)
    return 0


def start_embedded(settings: Settings) -> "EmbeddedMongo":
    """Start the embedded database under the data folder and say where it runs, and who may
    reach it."""
    # Imported here, as hub.app is below, to keep `ehrhub --help` fast.
    from hub.store.embedded import EmbeddedDatabaseError, EmbeddedMongo, publish_address, redacted

    embedded = EmbeddedMongo.in_hub_folder(settings.data_dir, settings.embedded_start_timeout)
    try:
        uri = embedded.start()
    except EmbeddedDatabaseError as error:
        raise CliError(str(error)) from error
    # `ehrhub admin` finds the running database here rather than starting a second one.
    publish_address(settings.data_dir, uri, embedded.pid or 0)
    print(
        f"embedded database pid={embedded.pid} uri={redacted(uri)} "
        f"data={embedded.data_dir} log={embedded.log_file}\n"
        f"  it answers only the hub: its password is in {embedded.credentials_file} (mode 0600, "
        "this user only). For production, set EHRHUB_MONGODB_URI to a MongoDB replica set with "
        "authentication",
        flush=True,
    )
    return embedded


def _withdraw_address(settings: Settings) -> None:
    from hub.store.embedded import withdraw_address

    withdraw_address(settings.data_dir)


def run_hub(settings: Settings, access_log: bool = True) -> None:
    """Serve the hub's app with uvicorn until it is told to stop."""
    from hub.app import create_app

    server = hub_server(create_app(settings), settings, access_log)
    try:
        server.run()
    except SystemExit as error:
        raise CliError("the hub did not start; see the log above") from error
    if not server.started:
        raise CliError("the hub did not start; see the log above")


def hub_server(app: Any, settings: Settings, access_log: bool = True) -> "uvicorn.Server":
    """Return the uvicorn server of the hub's app, as `ehrhub serve` runs it."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=access_log,
        # X-Forwarded-For and -Proto are believed from the listed proxies only (uvicorn would
        # believe them from 127.0.0.1): any other caller would write the audit trail's address.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
    )
    return uvicorn.Server(config)


def load(args: argparse.Namespace) -> int:
    """Post each Bundle file to a running hub, with a facility client's token when given, and
    print the status of each answer."""
    import httpx

    from adapters.sync.credentials import Credentials, CredentialsRefused
    from adapters.sync.settings import SyncSettings

    if args.hub is None:
        settings = Settings()
        args.hub = local_url(settings.host, settings.port)
    endpoint = fhir_endpoint(args.hub)
    given = {n: v for n in ("client_id", "client_secret") if (v := getattr(args, n)) is not None}
    sync_settings = SyncSettings(**given)
    failures = 0
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as client:
        credentials = None
        if sync_settings.client_id and sync_settings.client_secret:
            credentials = Credentials(
                client, endpoint, sync_settings.client_id, sync_settings.client_secret
            )
        for path in args.files:
            try:
                body = path.read_bytes()
                bundle = json.loads(body)
            except (OSError, ValueError) as error:
                print(f"{path}: cannot read a JSON document: {error}", file=sys.stderr)
                failures += 1
                continue
            if not is_transaction_or_batch(bundle):
                print(f"{path}: not a FHIR Bundle of type transaction or batch", file=sys.stderr)
                failures += 1
                continue
            try:
                token = credentials.header() if credentials else {}
                response = client.post(
                    endpoint, content=body, headers={"content-type": FHIR_JSON, **token}
                )
            except CredentialsRefused as error:
                raise CliError(str(error)) from error
            except httpx.HTTPError as error:
                raise CliError(f"cannot reach the hub at {endpoint}: {error}") from error
            print(f"{path}: {response.status_code} {response.reason_phrase}{summary(response)}")
            if response.status_code == 401 and credentials is None:
                print("give a facility client's --client-id and --client-secret", file=sys.stderr)
            if response.is_error:
                failures += 1
    return 1 if failures else 0


def sync(args: argparse.Namespace) -> int:
    """Run an `ehrhub sync` action (its logic lives in adapters/sync)."""
    try:
        return sync_cli.run(args)
    except sync_cli.SyncUsageError as error:
        raise UsageError(str(error)) from error
    except sync_cli.SyncError as error:
        raise CliError(str(error)) from error


def mllp(args: argparse.Namespace) -> int:
    """Run `ehrhub mllp` (its logic lives in adapters/sync/mllp.py)."""
    try:
        return mllp_cli.run(args)
    except sync_cli.SyncUsageError as error:
        raise UsageError(str(error)) from error
    except sync_cli.SyncError as error:
        raise CliError(str(error)) from error


def print_version(args: argparse.Namespace) -> int:
    """Print the hub's version."""
    print(f"ehrhub {__version__}")
    return 0


def load_sample(base: str, stopping: threading.Event, settings: Settings) -> None:
    """Wait until the hub is ready, send it the sample bundles, each with a token of a client
    of its facility, and say what they created."""
    import httpx
    from pymongo.errors import PyMongoError

    from adapters.simulate.sample import sample_bundles
    from adapters.sync.credentials import Credentials, CredentialsRefused

    bundles = sample_bundles()
    codes = sorted({sample_facility(bundle) for bundle in bundles})
    try:
        with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_SECONDS) as client:
            while not _is_ready(client):
                if stopping.wait(READY_POLL_SECONDS):
                    return
            credentials = {
                code: Credentials(client, base + FHIR_PATH, client_id, secret)
                for code, (client_id, secret) in sample_clients(settings, codes).items()
            }
            statuses: Counter[str] = Counter()
            for bundle in bundles:
                token = credentials[sample_facility(bundle)].header()
                response = client.post(
                    FHIR_PATH,
                    content=json.dumps(bundle),
                    headers={"content-type": FHIR_JSON, **token},
                )
                if response.is_error:
                    raise CliError(
                        f"{response.status_code} {response.reason_phrase}{summary(response)}"
                    )
                statuses.update(entry_statuses(response.json()))
    except (CliError, CredentialsRefused, httpx.HTTPError, PyMongoError, ValueError) as error:
        if not stopping.is_set():
            print(f"ehrhub: the sample data was not loaded: {error}", file=sys.stderr, flush=True)
        return
    created = sum(n for status, n in statuses.items() if status.startswith("201"))
    present = sum(n for status, n in statuses.items() if status.startswith("200"))
    print(
        f"sample data: {created} resources created, {present} already present, held by "
        f"facilities {', '.join(codes)} (to read them, make a client of one: ehrhub admin "
        "create-client --role facility --facility CODE)",
        flush=True,
    )
    print_links(base)


def sample_facility(bundle: dict[str, Any]) -> str:
    """Return the code of the facility whose Organization a sample Bundle carries."""
    from adapters.base import FACILITY_SYSTEM

    return next(
        str(identifier["value"])
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Organization"
        for identifier in entry["resource"]["identifier"]
        if identifier["system"] == FACILITY_SYSTEM
    )


def sample_clients(settings: Settings, codes: list[str]) -> dict[str, tuple[str, str]]:
    """Register a new facility client for each code in the hub's database, revoking those of
    an earlier sample load; return each code's client id and secret."""
    import asyncio

    from hub.auth.identities import identities_at, new_identity
    from hub.auth.roles import Role

    async def register() -> dict[str, tuple[str, str]]:
        async with identities_at(settings.mongodb_uri or "", settings) as identities:
            for old in await identities.all():
                if old.name == SAMPLE_CLIENT_NAME and not old.revoked:
                    await identities.revoke(old.client_id)
            made = {}
            for code in codes:
                identity, secret = new_identity(
                    Role.FACILITY, facility=code, name=SAMPLE_CLIENT_NAME
                )
                await identities.create(identity)
                made[code] = (identity.client_id, secret)
            return made

    return asyncio.run(register())


def print_links(base: str) -> None:
    """Print where to reach the hub."""
    width = max(len(label) for label, _ in LINKS)
    lines = [f"  {label:<{width}}  {base}{path}" for label, path in LINKS]
    print("EHR Hub:\n" + "\n".join(lines), flush=True)


def local_url(host: str, port: int) -> str:
    """Return the URL a client on this machine uses to reach a server listening on host:port."""
    # A wildcard address is where the server listens, not where a client connects.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def fhir_endpoint(hub: str) -> str:
    """Return the FHIR base of a hub given by its base URL, or by its FHIR base itself."""
    hub = hub.rstrip("/")
    return hub if hub.endswith(FHIR_PATH) else hub + FHIR_PATH


def is_transaction_or_batch(document: Any) -> bool:
    """Tell whether a JSON document is a FHIR Bundle the hub processes as a whole."""
    return (
        isinstance(document, dict)
        and document.get("resourceType") == "Bundle"
        and document.get("type") in ("transaction", "batch")
    )


def entry_statuses(bundle: Any) -> list[str]:
    """Return the status of every entry of a transaction-response or batch-response Bundle."""
    if not isinstance(bundle, dict):
        return []
    return [
        str(entry.get("response", {}).get("status", ""))
        for entry in bundle.get("entry", [])
        if isinstance(entry, dict)
    ]


def summary(response: Any) -> str:
    """Describe a hub's answer in a few words: entry statuses, or the OperationOutcome's issues."""
    try:
        document = response.json()
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    if document.get("resourceType") == "OperationOutcome":
        issues = [
            str(issue.get("diagnostics") or issue.get("code", ""))
            for issue in document.get("issue", [])
            if isinstance(issue, dict)
        ]
        return ": " + "; ".join(issues) if issues else ""
    counts = Counter(entry_statuses(document))
    if not counts:
        return ""
    return " (" + ", ".join(f"{n} × {status}" for status, n in sorted(counts.items())) + ")"


def _is_ready(client: Any) -> bool:
    """Tell whether the hub answers its readiness probe with 200."""
    import httpx

    try:
        return bool(client.get("/readyz").status_code == 200)
    except httpx.TransportError:
        return False


def _can_listen(host: str, port: int) -> bool:
    """Tell whether the hub could listen on host:port; a host that does not resolve cannot."""
    from hub.store.embedded import port_is_free

    try:
        return port_is_free(host, port)
    except OSError:
        return False


def _request_stop(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception so that the embedded database is stopped on the way out."""
    raise StopRequested


if __name__ == "__main__":
    sys.exit(main())
