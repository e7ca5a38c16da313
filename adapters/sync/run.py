"""One `ehrhub sync` run: parse a file record by record into the outbox while draining it.

Parsing and sending take turns in one thread, a batch at a time: the adapter's generator
yields a batch of records, enqueued in one SQLite commit, then the sender sends what is due.
Memory holds one batch; the outbox holds the rest on disk.
"""

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from adapters.base import Bundle, Output, Rejection

from .outbox import PENDING, Outbox
from .sender import Sender


@dataclass
class Counts:
    """What this run did so far."""

    parsed: int = 0
    new: int = 0
    rejected: int = 0
    pending_before: int = 0


def describe(bundle: Bundle) -> str:
    """Return the record a Bundle carries in a clerk's words: its Encounter's (or first
    resource's) conditional URL, which names the record's own identifier."""
    entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
    for entry in sorted(
        entries, key=lambda e: e.get("resource", {}).get("resourceType") != "Encounter"
    ):
        request = entry.get("request", {})
        url = request.get("url", "")
        if "?" in url:
            return str(url)
        if request.get("ifNoneExist"):
            return f"{url}?{request['ifNoneExist']}"
    return ""


class Progress:
    """A line on stderr, redrawn a few times a second, with counts and rate."""

    def __init__(self, counts: Counts, sender: Sender, interval: float, stream: TextIO) -> None:
        self.counts = counts
        self.sender = sender
        self.stream = stream
        self.tty = stream.isatty()
        # Without a terminal every redraw is a new line: keep those rarer.
        self.interval = interval if self.tty else interval * 8
        self.started = time.monotonic()
        self.drawn = 0.0
        self.last = ""

    def line(self) -> str:
        """Return the progress line."""
        c, t = self.counts, self.sender.tally
        pending = c.pending_before + c.new - c.rejected - t.sent - t.refused
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = (
            f"parsed {c.parsed} (new {c.new})  sent {t.sent}  refused {t.refused}  "
            f"rejected {c.rejected}  pending {pending}  {(t.sent + t.refused) / elapsed:.1f}/s"
        )
        wait = t.waiting_until - time.time()
        if wait > 0:
            text += f"  retrying in {wait:.0f}s: {t.last_error[:80]}"
        return text

    def draw(self, final: bool = False) -> None:
        """Redraw the line if it is time (always when final)."""
        now = time.monotonic()
        if not final and now - self.drawn < self.interval:
            return
        self.drawn = now
        text = self.line()
        if text == self.last and not self.tty:
            return
        self.last = text
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def enqueue(
    outbox: Outbox, outputs: Iterator[Output], name: str, counts: Counts, limit: int
) -> bool:
    """Enqueue up to `limit` outputs in one commit; return False once the input is exhausted."""
    with outbox.transaction():
        for _ in range(limit):
            output = next(outputs, None)
            if output is None:
                return False
            counts.parsed += 1
            key = f"{name}#{counts.parsed}"
            if isinstance(output, Rejection):
                if outbox.enqueue_rejection(key, output.source, output.reason):
                    counts.new += 1
                    counts.rejected += 1
            else:
                where = f"{name} record {counts.parsed}"
                if label := describe(output):
                    where += f" ({label})"
                counts.new += outbox.enqueue_bundle(key, where, output)
    return True


def run(
    outputs: Iterator[Output],
    name: str,
    outbox: Outbox,
    sender: Sender,
    batch: int,
    progress_seconds: float,
    stream: TextIO = sys.stderr,
) -> tuple[Counts, Exception | None]:
    """Parse every output into the outbox and send until nothing is pending; return the counts
    and the adapter's failure if it stopped early (what it had yielded is still sent)."""
    counts = Counts(pending_before=outbox.counts()[PENDING])
    progress = Progress(counts, sender, progress_seconds, stream)
    parsing, failure = True, None
    try:
        while True:
            if parsing:
                try:
                    parsing = enqueue(outbox, outputs, name, counts, batch)
                except Exception as error:  # an adapter bug: keep what it gave, report it
                    parsing, failure = False, error
            handled = sender.drain(batch, progress.draw)
            progress.draw()
            if parsing or handled:
                continue
            due = outbox.next_due_at()
            if due is None:
                break
            pause(
                max(due, sender.tally.waiting_until) - time.time(), progress.draw, progress_seconds
            )
    finally:
        progress.draw(final=True)
    return counts, failure


def pause(seconds: float, tick: Callable[[], Any], step: float) -> None:
    """Sleep, redrawing the progress line meanwhile."""
    end = time.time() + seconds
    while (left := end - time.time()) > 0:
        time.sleep(min(left, step))
        tick()
