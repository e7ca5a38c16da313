"""`ehrhub sync`: ship a hospital's file to the hub through the outbox, and read the outbox.

    ehrhub sync {hl7v2|xml130|csv|fhir} PATH --hub URL [--facility CODE] [--outbox FILE] [--batch N]
    ehrhub sync status [--outbox FILE] [--json]
    ehrhub sync rejected [--outbox FILE] [--csv]
    ehrhub sync retry [--outbox FILE]

This module only builds the parser and light objects at import; `hub.cli` calls `run(args)`.
"""

import argparse
import csv
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from .sources import FORMATS

# Exit status of a run that finished but left records rejected or refused (see `sync rejected`).
EXIT_SOME_REFUSED = 3
EXIT_INTERRUPTED = 130


class SyncError(Exception):
    """A failure to report on stderr (exit status 1)."""


class SyncUsageError(SyncError):
    """A command line that cannot work (exit status 2)."""


def add_parser(commands: Any) -> None:
    """Add `sync` and its sub-commands to `ehrhub`'s sub-command parsers."""
    parser = commands.add_parser(
        "sync",
        help="send a hospital's records (HL7 v2, XML130, CSV, FHIR) to a hub through an outbox",
        description="Parse a file into the outbox on disk and send it to the hub; run again "
        "after a crash or Ctrl-C to finish. Flags override EHRHUB_SYNC_* variables.",
    )
    actions = parser.add_subparsers(title="formats and actions", required=True, metavar="ACTION")
    for name in FORMATS:
        send = actions.add_parser(name, help=f"send a {name} file", description=__doc__)
        send.add_argument("path", type=Path, metavar="PATH")
        send.add_argument(
            "--hub", required=True, help="the hub's FHIR base URL, e.g. http://127.0.0.1:8080/fhir"
        )
        send.add_argument(
            "--facility",
            help="national facility code of the sender, when the "
            "file does not name it (required for hl7v2)",
        )
        send.add_argument("--batch", type=int, help="records enqueued and sent per round")
        send.add_argument("--client-id", help="OAuth client id (EHRHUB_SYNC_CLIENT_ID)")
        send.add_argument("--client-secret", help="OAuth secret (EHRHUB_SYNC_CLIENT_SECRET)")
        _outbox_flag(send)
        send.set_defaults(sync_action=send_file, format=name)
    status = actions.add_parser("status", help="count the outbox's records by state")
    status.add_argument("--json", action="store_true", help="print JSON")
    _outbox_flag(status)
    status.set_defaults(sync_action=show_status)
    rejected = actions.add_parser(
        "rejected", help="list the records the adapter rejected or the hub refused, and why"
    )
    rejected.add_argument("--csv", action="store_true", help="print CSV")
    _outbox_flag(rejected)
    rejected.set_defaults(sync_action=show_rejected)
    retry = actions.add_parser(
        "retry", help="put the records the hub refused back in line (after a fix on the hub)"
    )
    _outbox_flag(retry)
    retry.set_defaults(sync_action=retry_refused)


def _outbox_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outbox",
        type=Path,
        help="outbox file (EHRHUB_SYNC_OUTBOX, default .ehrhub/outbox.sqlite)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the chosen `ehrhub sync` action; return the exit status."""
    status: int = args.sync_action(args)
    return status


def _settings(args: argparse.Namespace) -> Any:
    from .settings import SyncSettings

    names = ("outbox", "batch", "client_id", "client_secret")
    overrides = {n: v for n in names if (v := getattr(args, n, None)) is not None}
    settings = SyncSettings(**overrides)
    if settings.batch < 1:
        raise SyncUsageError(f"--batch must be at least 1, not {settings.batch}")
    return settings


def _open(args: argparse.Namespace, must_exist: bool = True) -> Any:
    from .outbox import Outbox

    path: Path = _settings(args).outbox
    if must_exist and not path.exists():
        raise SyncUsageError(f"no outbox at {path}: nothing was synced from here yet (--outbox?)")
    return Outbox(path)


def send_file(args: argparse.Namespace) -> int:
    """Parse a file into the outbox and send everything pending to the hub."""
    import httpx

    from adapters.base import Facility

    from .outbox import Outbox
    from .run import run as run_sync
    from .sender import HubUnusable, Sender
    from .sources import FormatUnavailable

    settings = _settings(args)
    path: Path = args.path
    if not path.exists():
        raise SyncUsageError(f"{path}: no such file or folder")
    facility = Facility(args.facility) if args.facility else None
    try:
        outputs = iter(FORMATS[args.format](path, facility))
    except FormatUnavailable as error:
        raise SyncUsageError(f"sync {args.format}: {error}") from error
    outbox = Outbox(settings.outbox)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with httpx.Client(timeout=settings.timeout_seconds) as client:
            sender = Sender(outbox, client, args.hub.rstrip("/"), settings)
            name = f"{args.format}:{path.resolve()}"
            counts, failure = run_sync(
                outputs, name, outbox, sender, settings.batch, settings.progress_seconds
            )
    except KeyboardInterrupt:
        print(
            f"ehrhub: interrupted; run the same command again to finish ({settings.outbox})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except HubUnusable as error:
        raise SyncError(
            f"{error}; nothing was lost, the records wait in {settings.outbox}"
        ) from error
    finally:
        signal.signal(signal.SIGTERM, previous)
        outbox.close()
    tally = sender.tally
    print(
        f"{path}: {counts.parsed} records parsed ({counts.new} new), {tally.sent} sent, "
        f"{tally.refused} refused by the hub, {counts.rejected} rejected by the adapter"
    )
    if failure is not None:
        raise SyncError(
            f"{path}: the {args.format} adapter stopped after record "
            f"{counts.parsed}: {failure!r}; the records before it were sent"
        )
    if tally.refused or counts.rejected:
        print("see them with: ehrhub sync rejected", file=sys.stderr)
        return EXIT_SOME_REFUSED
    return 0


def show_status(args: argparse.Namespace) -> int:
    """Print the number of records in each state."""
    outbox = _open(args)
    try:
        counts = outbox.counts()
        last_error = outbox.last_error()
    finally:
        outbox.close()
    if args.json:
        print(json.dumps({"outbox": str(outbox.path), "counts": counts, "last_error": last_error}))
        return 0
    print(f"outbox {outbox.path}")
    for state, n in counts.items():
        print(f"  {state:<9} {n}")
    if last_error and counts["pending"]:
        print(f"  last error: {last_error}")
    return 0


def show_rejected(args: argparse.Namespace) -> int:
    """Print every record rejected by the adapter or refused by the hub, with the reason."""
    outbox = _open(args)
    try:
        problems = outbox.problems()
        if args.csv:
            columns = ["source", "state", "http_status", "reason", "outcome"]
            writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for problem in problems:
                outcome = problem["outcome"]
                problem["outcome"] = json.dumps(outcome, ensure_ascii=False) if outcome else ""
                writer.writerow(problem)
            return 0
        found = 0
        for problem in problems:
            found += 1
            status = f" {problem['http_status']}" if problem["http_status"] else ""
            print(f"{problem['source']}: {problem['state']}{status}: {problem['reason']}")
        if not found:
            print("no record was rejected or refused")
    finally:
        outbox.close()
    return 0


def retry_refused(args: argparse.Namespace) -> int:
    """Put the refused records back to pending, for the next `ehrhub sync` run to send."""
    outbox = _open(args)
    try:
        print(f"{outbox.requeue_refused()} refused records are pending again")
    finally:
        outbox.close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into Ctrl-C: stop between two commits."""
    raise KeyboardInterrupt
