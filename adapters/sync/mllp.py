"""`ehrhub mllp`: take HL7 v2 messages over MLLP into the outbox, acknowledge each, and ship
them to the hub.

    ehrhub mllp --port P --hub URL --facility CODE [--outbox FILE] [--host H]

Each message is mapped by adapters.hl7v2 and its Bundle stored in the outbox (synchronous=FULL)
before the ACK says AA, so an acknowledged message survives a crash, a power cut or the hub
being down. A message that is not mapped is answered AR (resending will not help); one that
cannot be stored is answered AE (the sender should resend). A thread drains the outbox to the
hub with the sync sender: retries, backoff, refusals kept for `ehrhub sync rejected`.
"""

import argparse
import asyncio
import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from adapters.base import Facility, Rejection

from .cli import SyncError, SyncUsageError
from .mllp_wire import (
    ACCEPTED,
    ERROR,
    REJECTED,
    FrameReader,
    Header,
    TooLarge,
    build_ack,
    decode,
    frame,
)
from .outbox import Outbox, digest

log = logging.getLogger("ehrhub.mllp")
READ_BYTES = 65536


def add_parser(commands: Any) -> None:
    """Add `mllp` to `ehrhub`'s sub-command parsers."""
    parser = commands.add_parser(
        "mllp",
        help="listen for HL7 v2 over MLLP, acknowledge each message once stored, send to a hub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)"
    )
    parser.add_argument(
        "--hub", required=True, help="the hub's FHIR base URL, e.g. http://127.0.0.1:8080/fhir"
    )
    parser.add_argument("--facility", required=True, help="national facility code of the sender")
    parser.add_argument(
        "--outbox",
        type=Path,
        help="outbox file (EHRHUB_SYNC_OUTBOX, default .ehrhub/outbox.sqlite)",
    )
    parser.add_argument("--client-id", help="OAuth client id (EHRHUB_SYNC_CLIENT_ID)")
    parser.add_argument("--client-secret", help="OAuth secret (EHRHUB_SYNC_CLIENT_SECRET)")


class Receiver:
    """Turns each received message into its ACK, storing its Bundle first."""

    def __init__(self, outbox: Outbox, facility: Facility, wake: threading.Event) -> None:
        self.outbox = outbox
        self.facility = facility
        self.wake = wake

    def answer(self, data: bytes) -> bytes:
        """Map, store and acknowledge one framed message; return the framed ACK."""
        from adapters.hl7v2 import map_message, parse_message, split_messages
        from adapters.hl7v2.message import ParseError

        text = decode(data)
        header = Header.of(text)
        control_id = header.control_id
        # A re-sent message (same MSH-10, same content) is stored once; see Outbox.
        key = f"mllp:{self.facility.code}:{control_id or digest(text)}"
        where = f"mllp message MSH-10 {control_id or '(none)'}"
        messages = list(split_messages(text))
        if len(messages) != 1:
            reason = f"a frame must hold one message, not {len(messages)}"
            return self._reply(header, REJECTED, reason)
        try:
            message = parse_message(messages[0])
        except ParseError as error:
            return self._reply(header, REJECTED, f"cannot parse: {error}", key, where)
        name = f"{message.type}^{message.trigger}"
        output = map_message(message, self.facility, where)
        if isinstance(output, Rejection):
            return self._reply(header, REJECTED, output.reason, key, where, name)
        try:
            new = self.outbox.enqueue_bundle(key, where, output)
        except sqlite3.Error as error:
            return self._reply(header, ERROR, f"cannot store the message: {error}", name=name)
        self.wake.set()
        return self._reply(header, ACCEPTED, name=name, note="" if new else " (already stored)")

    def too_large(self, frame_: TooLarge, limit: int) -> bytes:
        """Refuse a message over the size limit, naming both sizes; return the framed ACK."""
        header = Header.of(decode(frame_.head))
        control_id = header.control_id
        key = f"mllp:{self.facility.code}:{control_id or digest(frame_.head.decode('latin-1'))}"
        reason = (
            f"the message is {frame_.size} bytes, over the limit of {limit} "
            "(EHRHUB_SYNC_MLLP_MAX_MESSAGE_BYTES)"
        )
        where = f"mllp message MSH-10 {control_id or '(none)'}"
        return self._reply(header, REJECTED, reason, key, where)

    def _reply(
        self,
        header: Header,
        code: str,
        reason: str = "",
        key: str = "",
        where: str = "",
        name: str = "",
        note: str = "",
    ) -> bytes:
        if code == REJECTED and key:
            try:  # listed by `ehrhub sync rejected`; the AR stands even if this fails
                self.outbox.enqueue_rejection(key, where, reason)
            except sqlite3.Error as error:
                log.warning("cannot record the rejection of %s: %s", key, error)
        name = name or header.field(9) or "?"
        detail = f": {reason}" if reason else note
        log.info("%s %s %s%s", header.control_id or "-", name, code, detail)
        return frame(build_ack(header, code, reason))


class Drainer(threading.Thread):
    """Sends the outbox to the hub until told to stop, on its own outbox connection."""

    def __init__(self, settings: Any, hub: str, wake: threading.Event) -> None:
        super().__init__(name="mllp-drainer", daemon=True)
        self.settings = settings
        self.hub = hub
        self.wake = wake
        self.stopping = threading.Event()

    def run(self) -> None:
        import httpx

        from .sender import HubUnusable, Sender

        outbox = Outbox(self.settings.outbox, durable=True)
        try:
            with httpx.Client(timeout=self.settings.timeout_seconds) as client:
                sender = Sender(outbox, client, self.hub, self.settings)
                while not self.stopping.is_set():
                    try:
                        if sender.drain(self.settings.batch):
                            continue
                    except HubUnusable as error:
                        log.error("%s; messages wait in %s", error, self.settings.outbox)
                        sender.tally.waiting_until = time.time() + self.settings.backoff_max_seconds
                    if sender.tally.last_error:
                        log.warning("hub unavailable, will retry: %s", sender.tally.last_error)
                        sender.tally.last_error = ""
                    due = outbox.next_due_at()
                    wait = self.settings.mllp_idle_seconds
                    if due is not None:
                        wait = max(due, sender.tally.waiting_until) - time.time()
                    self.wake.wait(min(max(wait, 0.0), self.settings.mllp_idle_seconds))
                    self.wake.clear()
        finally:
            outbox.close()

    def stop(self) -> None:
        """Stop after the request in hand (an unanswered one stays pending, for next start)."""
        self.stopping.set()
        self.wake.set()
        self.join(self.settings.mllp_stop_seconds)


class Server:
    """The MLLP listener: one task per connection, several messages per connection."""

    def __init__(self, receiver: Receiver, settings: Any) -> None:
        self.receiver = receiver
        self.settings = settings
        self.connections: set[asyncio.Task[None]] = set()

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        """Listen until `stop` is set, then stop accepting and close every connection."""
        try:
            server = await asyncio.start_server(self.connection, host, port)
        except OSError as error:
            raise SyncError(f"cannot listen on {host}:{port}: {error.strerror}") from error
        log.info("listening for MLLP on %s:%s", host, port)
        await stop.wait()
        server.close()
        for task in self.connections:
            task.cancel()
        if self.connections:
            await asyncio.wait(self.connections, timeout=self.settings.mllp_stop_seconds)
        log.info("stopped")

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer each message of one connection, in order, until the peer closes it."""
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        peer = writer.get_extra_info("peername")
        limit = self.settings.mllp_max_message_bytes
        frames = FrameReader(limit)
        try:
            while data := await reader.read(READ_BYTES):
                # No await between storing a message and writing its ACK: a stop lands
                # between messages, never inside one.
                for message in frames.feed(data):
                    if isinstance(message, TooLarge):
                        writer.write(self.receiver.too_large(message, limit))
                    else:
                        writer.write(self.receiver.answer(message))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.connections.discard(task)
            if frames.pending:
                log.warning("%s closed with %d bytes of an unfinished frame", peer, frames.pending)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), self.settings.mllp_stop_seconds)
            except (ConnectionError, TimeoutError, asyncio.CancelledError):
                pass


def run(args: argparse.Namespace) -> int:
    """Run `ehrhub mllp` until Ctrl-C or SIGTERM; return the exit status."""
    from .settings import SyncSettings

    if not 0 < args.port <= 65535:
        raise SyncUsageError(f"--port must be between 1 and 65535, not {args.port}")
    # One line per message from this module; the HTTP client's own lines only on warnings.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s mllp %(message)s")
    log.setLevel(logging.INFO)
    names = ("outbox", "client_id", "client_secret")
    overrides = {n: v for n in names if (v := getattr(args, n, None)) is not None}
    settings = SyncSettings(**overrides)
    wake = threading.Event()
    outbox = Outbox(settings.outbox, durable=True)
    drainer = Drainer(settings, args.hub.rstrip("/"), wake)
    try:
        drainer.start()
        server = Server(Receiver(outbox, Facility(args.facility), wake), settings)
        asyncio.run(_serve_until_signal(server, args.host, args.port))
    finally:
        drainer.stop()
        outbox.close()
    return 0


async def _serve_until_signal(server: Server, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.serve(host, port, stop)
