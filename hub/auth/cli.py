"""`ehrhub admin`: create, list and revoke the clients and people who may call the hub, and
load the ministry's facility registry.

    ehrhub admin create-client --role {admin|facility|clinician|ministry|auditor|patient}
        [--facility CODE] [--name TEXT] [--username U [--password-stdin]] [--patient CCCD]
        [--practitioner REF] [--jwks FILE] [--json] [--data-dir DIR | --mongodb-uri URI]
    ehrhub admin list-clients [--json] [--data-dir DIR | --mongodb-uri URI]
    ehrhub admin revoke-client ID [--data-dir DIR | --mongodb-uri URI]
    ehrhub admin facilities import FILE [--json] [--data-dir DIR | --mongodb-uri URI]
    ehrhub admin rotate-key | list-keys [--json] | remove-key KID  [--key-file F | --data-dir DIR]

It works whether or not the hub runs: with a MongoDB URI it connects; on the embedded
database it uses the server a running hub holds for the data folder, or starts one for the
command's duration. A fresh installation bootstraps its first admin this way. The token keys
live in their own file (EHRHUB_TOKEN_KEY_FILE), which running hubs read again when it changes.

This module only builds the parser at import; the work is imported when a command runs.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.auth.roles import Role

if TYPE_CHECKING:
    from hub.auth.identities import Identities, Identity
    from hub.reporting.registry import Facility, Report
    from hub.settings import Settings

ROLES = tuple(Role)
EXIT_FAILED = 1
EXIT_USAGE = 2


class AdminError(Exception):
    """A failure to report on stderr (exit status 1)."""


class AdminUsageError(AdminError):
    """A command line that cannot work (exit status 2)."""


def add_parser(commands: Any) -> None:
    """Add `admin` and its sub-commands to `ehrhub`'s sub-command parsers."""
    parser = commands.add_parser(
        "admin",
        help="create, list and revoke the clients and people who may call the hub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create-client",
        help="register a client or person and print its id and secret (shown once)",
        description="Register a client or person; print its client_id and client_secret. The "
        "hub keeps only a hash of the secret: it cannot be shown again.",
    )
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--facility", help="facility code (required for facility, clinician)")
    create.add_argument("--name", help="a name to recognise the client or person by")
    create.add_argument(
        "--username", help="login name of a person; the password is the secret by default"
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the person's password from the first line of standard input",
    )
    create.add_argument("--patient", help="the patient's national citizen ID (patient role)")
    create.add_argument(
        "--practitioner", help="a clinician's Practitioner/<id> or identifier system|value"
    )
    create.add_argument(
        "--jwks", type=Path, help="JSON file of public keys for SMART private_key_jwt"
    )
    create.add_argument(
        "--json", action="store_true", help="print one JSON object (last line of output)"
    )
    _database_flags(create)
    create.set_defaults(admin_action=create_client)

    listing = actions.add_parser("list-clients", help="list clients and people (no secrets)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    _database_flags(listing)
    listing.set_defaults(admin_action=list_clients)

    revoke = actions.add_parser(
        "revoke-client", help="revoke a client or person: no new token, and its tokens stop"
    )
    revoke.add_argument("client_id", metavar="ID")
    _database_flags(revoke)
    revoke.set_defaults(admin_action=revoke_client)

    facilities = actions.add_parser("facilities", help="the registry of health facilities")
    registry = facilities.add_subparsers(title="actions", required=True, metavar="ACTION")
    load = registry.add_parser(
        "import",
        help="add and update facilities from the ministry's registry CSV",
        description="Add and update facilities (Organization and Location) from the registry "
        "CSV: columns code,name,province,level,type,ownership (others ignored); a province by "
        "code or name. Print what was added, changed, unchanged and refused, and each refused "
        "line with why. Exit status 0 when no line was refused, 1 otherwise (the other lines "
        "are still imported), 2 when the file cannot be read.",
    )
    load.add_argument("file", metavar="FILE", type=Path, help="the registry CSV (UTF-8)")
    load.add_argument("--json", action="store_true", help="print one JSON object")
    _database_flags(load)
    load.set_defaults(admin_action=import_facilities)

    rotate = actions.add_parser(
        "rotate-key",
        help="add a token key that signs from now on; the others keep verifying",
        description="Add a new key to the token key file and sign new tokens with it. Tokens "
        "signed with the earlier keys keep working until those keys are removed "
        "(remove-key). Running hubs read the file again: no restart.",
    )
    _key_flags(rotate)
    rotate.set_defaults(admin_action=rotate_key)

    keys = actions.add_parser("list-keys", help="list the token keys (ids, never the keys)")
    keys.add_argument("--json", action="store_true", help="print a JSON array")
    _key_flags(keys)
    keys.set_defaults(admin_action=list_keys)

    drop = actions.add_parser(
        "remove-key", help="remove a token key that no longer signs: its tokens stop at once"
    )
    drop.add_argument("kid", metavar="KID")
    _key_flags(drop)
    drop.set_defaults(admin_action=remove_key)

    parser.set_defaults(command=run)


def _key_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--key-file", type=Path, help="the token key file (EHRHUB_TOKEN_KEY_FILE)")
    where.add_argument(
        "--data-dir", type=Path, help="data folder holding token-keys.json (EHRHUB_DATA_DIR)"
    )


def _database_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir", type=Path, help="data folder of the embedded database (EHRHUB_DATA_DIR)"
    )
    where.add_argument("--mongodb-uri", help="MongoDB to use (EHRHUB_MONGODB_URI)")


def run(args: argparse.Namespace) -> int:
    """Run the chosen `ehrhub admin` action; report errors on stderr; return the exit status."""
    from pydantic import ValidationError

    try:
        action: Callable[[argparse.Namespace], int] = args.admin_action
        return action(args)
    except ValidationError as error:
        print(f"ehrhub: invalid setting: {error.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except AdminUsageError as error:
        print(f"ehrhub: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AdminError as error:
        print(f"ehrhub: {error}", file=sys.stderr)
        return EXIT_FAILED


def create_client(args: argparse.Namespace) -> int:
    """Register a client or person and print its id and secret."""
    from hub.auth.identities import IdentityError, new_identity
    from hub.auth.roles import Role

    password = _read_password() if args.password_stdin else None
    try:
        identity, secret = new_identity(
            Role(args.role),
            facility=args.facility,
            name=args.name,
            username=args.username,
            patient=args.patient,
            practitioner=args.practitioner,
            jwks=_read_jwks(args.jwks) if args.jwks else None,
            password=password,
        )
    except IdentityError as error:
        raise AdminUsageError(str(error)) from None

    async def store(identities: "Identities") -> None:
        try:
            await identities.create(identity)
        except IdentityError as error:
            raise AdminError(str(error)) from None

    _with_identities(args, store)
    shown = {"client_id": identity.client_id, "client_secret": secret}
    details = {k: v for k, v in identity.public().items() if v and k not in shown}
    if args.json:
        print(json.dumps(shown | details), flush=True)
        return 0
    for name, value in (shown | details).items():
        print(f"{name:<14} {value}")
    print(
        "Keep the secret now: the hub stores only its hash and cannot show it again."
        + (" It is also the password." if identity.username and password is None else ""),
        flush=True,
    )
    return 0


def list_clients(args: argparse.Namespace) -> int:
    """Print every client and person, without secrets."""
    found: list[Identity] = []

    async def read(identities: "Identities") -> None:
        found.extend(await identities.all())

    _with_identities(args, read)
    rows = [identity.public() for identity in found]
    if args.json:
        print(json.dumps(rows), flush=True)
        return 0
    columns = ("client_id", "role", "facility", "username", "name", "created", "revoked_at")
    table = [columns] + [tuple(str(row[c] or "") for c in columns) for row in rows]
    widths = [max(len(line[n]) for line in table) for n in range(len(columns))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def revoke_client(args: argparse.Namespace) -> int:
    """Revoke a client or person; its tokens stop working at once."""
    revoked: list[Identity | None] = []

    async def revoke(identities: "Identities") -> None:
        revoked.append(await identities.revoke(args.client_id))

    _with_identities(args, revoke)
    identity = revoked[0]
    if identity is None:
        raise AdminError(
            f"no client has the id {args.client_id!r} (see `ehrhub admin list-clients`)"
        )
    assert identity.revoked_at is not None
    print(
        f"revoked {identity.client_id} ({identity.role}) at {identity.revoked_at.isoformat()}: "
        "it gets no new token and its tokens stop working",
        flush=True,
    )
    return 0


def rotate_key(args: argparse.Namespace) -> int:
    """Add a signing key; the earlier ones keep verifying."""
    from hub.auth.keys import KeyFileError, read_keys, rotate

    path = _key_file(args)
    try:
        key = rotate(path)
        others = [kid for kid in read_keys(path).keys if kid != key.kid]
    except (KeyFileError, OSError) as error:
        raise AdminError(str(error)) from None
    settings = _settings(args)
    longest = max(settings.token_lifetime_seconds, settings.break_glass_seconds)
    print(f"added key {key.kid} to {path}: it signs the hub's tokens from now on", flush=True)
    if others:
        print(
            f"keys {', '.join(others)} still verify the tokens they signed; remove each with "
            f"`ehrhub admin remove-key KID` once those have expired (at most {longest} s)",
            flush=True,
        )
    return 0


def list_keys(args: argparse.Namespace) -> int:
    """Print the token keys' ids, creation times and which one signs (never a key)."""
    from hub.auth.keys import KeyFileError, read_keys

    path = _key_file(args)
    try:
        found = read_keys(path)
    except KeyFileError as error:
        raise AdminError(str(error)) from None
    rows = [
        {"kid": k.kid, "created": k.created, "signs": k.kid == found.signer}
        for k in found.keys.values()
    ]
    if args.json:
        print(json.dumps(rows), flush=True)
        return 0
    for row in rows:
        print(f"{row['kid']}  {row['created']}  {'signs' if row['signs'] else 'verifies'}")
    return 0


def remove_key(args: argparse.Namespace) -> int:
    """Remove a key that no longer signs."""
    from hub.auth.keys import KeyFileError, remove

    path = _key_file(args)
    try:
        left = remove(path, args.kid)
    except KeyFileError as error:
        raise AdminError(str(error)) from None
    print(
        f"removed key {args.kid} from {path}: the tokens it signed are refused from now on; "
        f"{len(left.keys)} key(s) left, {left.signer} signs",
        flush=True,
    )
    return 0


def _key_file(args: argparse.Namespace) -> Path:
    """Return the token key file the command works on."""
    from hub.settings import TOKEN_KEY_FILE

    if args.key_file is not None:
        return Path(args.key_file)
    settings = _settings(args)
    return settings.token_key_file or settings.data_dir / TOKEN_KEY_FILE


def import_facilities(args: argparse.Namespace) -> int:
    """Import the registry CSV; exit 1 if any line was refused."""
    from pymongo.errors import PyMongoError

    from hub.reporting.registry import parse_csv
    from hub.store.embedded import redacted
    from hub.store.mongo import UnsuitableDatabase

    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AdminUsageError(f"{args.file}: cannot read a UTF-8 CSV: {error}") from None
    facilities, refused = parse_csv(text)
    settings = _settings(args)
    with _database_uri(settings) as uri:
        try:
            report = asyncio.run(_import_on(uri, settings, facilities))
        except (PyMongoError, UnsuitableDatabase) as error:
            raise AdminError(f"the database at {redacted(uri)} failed: {error}") from None
    report.refused = sorted(refused + report.refused, key=lambda r: r.line)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False), flush=True)
    else:
        print(report.summary())
        for refusal in report.refused:
            print(f"refused {refusal}")
    return EXIT_FAILED if report.refused else 0


async def _import_on(uri: str, settings: "Settings", facilities: list["Facility"]) -> "Report":
    from hub.reporting.registry import import_facilities as write_registry
    from hub.search import layout
    from hub.search.extract import keys
    from hub.store.mongo import Mongo
    from hub.store.resources import ResourceStore

    mongo = Mongo(uri, settings.database, settings.database_timeout_seconds)
    try:
        # As the hub does before it serves: the registry is found by its search keys.
        await mongo.require_transactions()
        await mongo.ensure_indexes()
        store = ResourceStore(mongo, keys)
        await layout.bring_up_to_date(store)
        return await write_registry(store, facilities)
    finally:
        await mongo.close()


def _read_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise AdminUsageError("--password-stdin: standard input is empty")
    return line.rstrip("\r\n")


def _read_jwks(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AdminUsageError(f"--jwks {path}: cannot read a JSON key set: {error}") from None


def _with_identities(
    args: argparse.Namespace, work: Callable[["Identities"], Awaitable[None]]
) -> None:
    """Run work on the identities of the hub's database, wherever that database is."""
    from pymongo.errors import PyMongoError

    from hub.store.embedded import redacted

    settings = _settings(args)
    with _database_uri(settings) as uri:
        try:
            asyncio.run(_run_on(uri, settings, work))
        except PyMongoError as error:
            raise AdminError(f"the database at {redacted(uri)} failed: {error}") from None


async def _run_on(
    uri: str, settings: "Settings", work: Callable[["Identities"], Awaitable[None]]
) -> None:
    from hub.auth.identities import identities_at

    async with identities_at(uri, settings) as identities:
        await work(identities)


def _settings(args: argparse.Namespace) -> "Settings":
    from hub.settings import Settings

    overrides = {
        name: value
        for name in ("mongodb_uri", "data_dir")
        if (value := getattr(args, name, None)) is not None
    }
    if "data_dir" in overrides:
        # --data-dir says which database to use, over an EHRHUB_MONGODB_URI in the environment.
        overrides["mongodb_uri"] = None
    return Settings(**overrides)


@contextmanager
def _database_uri(settings: "Settings") -> Iterator[str]:
    """Yield the URI of the hub's database: the given one, the embedded server a running hub
    holds, or an embedded server started on the data folder until the block ends."""
    from hub.store.embedded import (
        EmbeddedDatabaseError,
        EmbeddedMongo,
        redacted,
        running_address,
    )

    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    running = running_address(settings.data_dir)
    if running is not None:
        _note(f"using the database of the hub running on {settings.data_dir} ({redacted(running)})")
        yield running
        return
    embedded = EmbeddedMongo.in_hub_folder(settings.data_dir, settings.embedded_start_timeout)
    try:
        uri = embedded.start()
    except EmbeddedDatabaseError as error:
        raise AdminError(str(error)) from None
    _note(
        f"no hub is running on {settings.data_dir}: started its embedded database ({redacted(uri)})"
    )
    try:
        yield uri
    finally:
        embedded.stop()


def _note(message: str) -> None:
    print(f"ehrhub admin: {message}", file=sys.stderr, flush=True)
