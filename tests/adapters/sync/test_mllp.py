"""`ehrhub mllp`: MLLP framing, HL7 v2 ACKs, and a real listener feeding a real hub."""

import json
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from live import (
    REPO,
    bearer_of,
    clean_env,
    create_client,
    ehrhub,
    start_hub,
    stop_hub,
    sync_credentials,
    wait_for_output,
)

from adapters.base import TZ_VN, Facility
from adapters.sync.mllp import Receiver
from adapters.sync.mllp_wire import HEAD_BYTES, FrameReader, Header, TooLarge, build_ack, frame
from adapters.sync.outbox import Outbox
from hub.store.embedded import free_port

FIXTURES = REPO / "tests" / "fixtures" / "hl7v2"
FACILITY = "79001"
MRN_SYSTEM = f"https://moh.gov.vn/fhir/sid/mrn/{FACILITY}"
# Fixture -> its PID-3.1, the MRN its Patient is stored under.
MAPPED = {"ADT-A01-01.hl7": "PATID1234", "ADT04-23.hl7": "123456789", "ORU-R01-01.hl7": "14"}
UNMAPPED = "ORM-O01-01.hl7"
DELIVERY_SECONDS = 20.0
ORIGINAL = (
    "MSH|^~\\&|ADTApp|GHHSFacility|EHRApp|GHHRFacility|202401011200||ADT^A01^ADT_A01|MSG42|P|2.5\r"
    "PID|1||123^^^^MR||NGUYEN^AN\r"
)


def fixture(name: str) -> str:
    """Return a fixture message as an MLLP sender would send it: segments ending in CR."""
    text = (FIXTURES / name).read_text(encoding="utf-8-sig")
    return "\r".join(line for line in text.splitlines() if line.strip()) + "\r"


def segments(ack: str) -> list[list[str]]:
    return [segment.split("|") for segment in ack.split("\r") if segment]


# Framing


def test_a_frame_split_across_reads_is_put_back_together() -> None:
    reader = FrameReader()
    data = frame("MSH|one\r")
    assert reader.feed(data[:1]) == []
    assert reader.feed(data[1:5]) == []
    assert reader.feed(data[5:-1]) == []  # the end block's 0x1C without its CR
    assert reader.feed(data[-1:]) == [b"MSH|one\r"]
    assert reader.pending == 0


def test_two_frames_in_one_read_give_two_messages() -> None:
    assert FrameReader().feed(frame("MSH|one") + frame("MSH|two")) == [b"MSH|one", b"MSH|two"]


def test_bytes_outside_frames_are_dropped() -> None:
    reader = FrameReader()
    data = b"\r\nnoise" + frame("MSH|one") + b"\n\n" + frame("MSH|two") + b"tail"
    assert reader.feed(data) == [b"MSH|one", b"MSH|two"]
    assert reader.feed(b"\x0bMSH|half") == []
    assert reader.pending == len(b"MSH|half")


def test_a_start_block_inside_a_frame_starts_it_over() -> None:
    assert FrameReader().feed(b"\x0bMSH|cut\x0bMSH|whole\x1c\r") == [b"MSH|whole"]


def test_a_frame_over_the_limit_is_skipped_not_held_and_given_as_too_large() -> None:
    message = "MSH|^~\\&|HIS|F|EHRHUB|MOH|20240101||ADT^A01|BIG1|P|2.5\r" + "Z" * 100_000
    data = b"noise" + frame(message) + frame("MSH|next")
    reader = FrameReader(max_bytes=1000)
    found = []
    for at in range(0, len(data), 333):
        found += reader.feed(data[at : at + 333])
        assert reader.held < 1000 + HEAD_BYTES + 333
    (big, small) = found
    assert isinstance(big, TooLarge)
    assert big.size == len(message.encode())
    assert message.encode().startswith(big.head) and 1000 < len(big.head) <= HEAD_BYTES
    assert small == b"MSH|next"
    assert reader.pending == 0


def test_a_frame_at_the_limit_is_taken_and_a_restart_forgets_the_skipped_one() -> None:
    assert FrameReader(max_bytes=8).feed(frame("MSH|1234")) == [b"MSH|1234"]
    reader = FrameReader(max_bytes=8)
    assert reader.feed(b"\x0bMSH|toolongtoolong") == []
    assert reader.feed(b"\x0bMSH|ok\x1c\r") == [b"MSH|ok"]


# ACKs


@pytest.mark.parametrize("code", ["AA", "AR", "AE"])
def test_an_ack_swaps_sender_and_receiver_and_echoes_the_control_id(code: str) -> None:
    now = datetime(2024, 1, 1, 12, 0, tzinfo=TZ_VN)
    msh, msa = segments(build_ack(Header.of(ORIGINAL), code, now=now))
    assert msh[:8] == ["MSH", "^~\\&", "EHRApp", "GHHRFacility", "ADTApp", "GHHSFacility",
                       "20240101120000+0700", ""]  # fmt: skip
    assert msh[8] == "ACK^A01^ACK"
    assert msh[9] and msh[9] != "MSG42"
    assert msh[10:12] == ["P", "2.5"]
    assert msa == ["MSA", code, "MSG42"]


def test_a_rejection_reason_goes_in_msa_3_escaped() -> None:
    ack = build_ack(Header.of(ORIGINAL), "AR", "ORM^O01 is not mapped | at all\nreally")
    assert segments(ack)[1] == [
        "MSA",
        "AR",
        "MSG42",
        "ORM\\S\\O01 is not mapped \\F\\ at all really",
    ]


def test_the_receiver_refuses_a_message_over_the_limit_naming_sizes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", durable=True)
    receiver = Receiver(outbox, Facility(FACILITY), threading.Event())
    (ack,) = FrameReader().feed(receiver.too_large(TooLarge(ORIGINAL.encode(), 20_000_000), 1000))
    msa = segments(ack.decode())[1]
    assert msa[:3] == ["MSA", "AR", "MSG42"]
    assert "20000000 bytes, over the limit of 1000" in msa[3]
    assert outbox.counts()["rejected"] == 1
    outbox.close()


def test_the_receiver_answers_aa_ar_and_ae(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", durable=True)
    receiver = Receiver(outbox, Facility(FACILITY), threading.Event())

    def answer(text: str) -> list[list[str]]:
        found = FrameReader().feed(receiver.answer(text.encode()))
        return segments(found[0].decode())

    assert answer(fixture("ADT-A01-01.hl7"))[1] == ["MSA", "AA", "MSG00001"]
    assert answer(fixture("ADT-A01-01.hl7"))[1] == ["MSA", "AA", "MSG00001"]
    assert outbox.counts()["pending"] == 1
    rejected = answer(fixture(UNMAPPED))[1]
    assert rejected[:3] == ["MSA", "AR", "MSG00018"]
    assert "ORM\\S\\O01 is not mapped" in rejected[3]
    assert answer("garbage")[1][:2] == ["MSA", "AR"]
    outbox.close()
    failed = answer(fixture("ADT04-23.hl7"))[1]
    assert failed[:3] == ["MSA", "AE", "Q123456789T123456789X123456"]
    assert "cannot store the message" in failed[3]


# A real listener and a real hub


class Hub:
    """A real `ehrhub serve` on a database of the test's own, started when asked."""

    def __init__(self, mongodb_uri: str, log: Path) -> None:
        self.port = free_port()
        self.fhir = f"http://127.0.0.1:{self.port}/fhir"
        self.args = ("--port", str(self.port), "--mongodb-uri", mongodb_uri)
        self.database = f"test_mllp_{uuid.uuid4().hex[:12]}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        # The facility's system, registered on the database before the hub first starts.
        self.client = create_client(
            "--role", "facility", "--facility", FACILITY, "--mongodb-uri", mongodb_uri,
            database=self.database,
        )  # fmt: skip

    def start(self) -> None:
        self.process = start_hub(self.log, *self.args, database=self.database)
        wait_for_output(self.process, self.log, r"Application startup complete")


@pytest.fixture
def hub(mongodb_uri: str, tmp_path: Path) -> Iterator[Hub]:
    """Yield a hub, not yet started; stop it afterwards."""
    found = Hub(mongodb_uri, tmp_path / "hub.log")
    try:
        yield found
    finally:
        if found.process is not None:
            stop_hub(found.process)


@pytest.fixture
def listener(hub: Hub, tmp_path: Path) -> Iterator[int]:
    """Run `ehrhub mllp` on a free port, sending to the hub; yield its port."""
    port = free_port()
    log = tmp_path / "mllp.log"
    args = ("mllp", "--port", str(port), "--hub", hub.fhir, "--facility", FACILITY)
    with log.open("wb") as output:
        process = subprocess.Popen(
            ehrhub(*args, "--outbox", str(tmp_path / "outbox.sqlite")),
            cwd=REPO,
            env=clean_env(
                sync_backoff_base_seconds="0.2",
                sync_backoff_max_seconds="1",
                **sync_credentials(hub.client),
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_output(process, log, r"listening for MLLP")
        yield port
    finally:
        status = stop_hub(process)  # SIGTERM, as a service manager sends
        print(log.read_text())
    assert status == 0, "`ehrhub mllp` did not stop cleanly on SIGTERM"


def exchange(sock: socket.socket, reader: FrameReader, message: str) -> str:
    """Send one framed message and return its ACK's MSA-1."""
    sock.sendall(frame(message))
    while True:
        found = reader.feed(sock.recv(65536))
        if found:
            return segments(found[0].decode())[1][1]


def send(port: int, *names: str) -> list[str]:
    """Send fixture messages over one connection; return their ACK codes."""
    reader = FrameReader()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return [exchange(sock, reader, fixture(name)) for name in names]


def patients(client: httpx.Client, hub: Hub, mrn: str) -> int:
    found = client.get(f"{hub.fhir}/Patient", params={"identifier": f"{MRN_SYSTEM}|{mrn}"})
    return len(found.json().get("entry", []))


def pending(outbox: Path) -> int:
    """Return how many records the listener's outbox still has to send, read as another
    process would (none before the listener made it)."""
    if not outbox.exists():
        return len(MAPPED)
    with sqlite3.connect(outbox, timeout=10) as db:
        try:
            (found,) = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()
        except sqlite3.OperationalError:  # the table is not created yet
            return len(MAPPED)
    return int(found)


def assert_hub_holds_each_patient_once(hub: Hub, outbox: Path) -> None:
    """Wait until the listener has sent everything it acknowledged (so that a duplicate would
    have arrived too); check the hub holds each Patient once."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while pending(outbox):
        assert time.monotonic() < deadline, "the acknowledged messages never reached the hub"
        time.sleep(0.1)
    headers = bearer_of(hub.fhir.removesuffix("/fhir"), hub.client)
    with httpx.Client(timeout=10, headers=headers) as client:
        found = {mrn: patients(client, hub, mrn) for mrn in MAPPED.values()}
    assert found == dict.fromkeys(MAPPED.values(), 1)


def outbox_counts(tmp_path: Path) -> dict[str, int]:
    """Return the outbox's counts as `ehrhub sync status` reports them."""
    status = subprocess.run(
        ehrhub("sync", "status", "--json", "--outbox", str(tmp_path / "outbox.sqlite")),
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    counts: dict[str, int] = json.loads(status.stdout)["counts"]
    return counts


def test_messages_over_mllp_reach_the_hub_once_each(
    hub: Hub, listener: int, tmp_path: Path
) -> None:
    hub.start()
    assert send(listener, *MAPPED, UNMAPPED, "ADT-A01-01.hl7") == ["AA", "AA", "AA", "AR", "AA"]
    assert_hub_holds_each_patient_once(hub, tmp_path / "outbox.sqlite")
    assert outbox_counts(tmp_path) == {"pending": 0, "sent": 3, "rejected": 1, "refused": 0}


def test_a_message_over_the_size_limit_gets_ar_and_the_connection_goes_on(listener: int) -> None:
    big = fixture("ADT-A01-01.hl7").rstrip("\r\n") + "\rZXX|" + "x" * (17 * 1024 * 1024)
    reader = FrameReader()
    with socket.create_connection(("127.0.0.1", listener), timeout=30) as sock:
        assert exchange(sock, reader, big) == "AR"
        assert exchange(sock, reader, fixture("ADT-A01-01.hl7")) == "AA"


def test_messages_acknowledged_while_the_hub_is_down_reach_it_once_it_is_up(
    hub: Hub, listener: int, tmp_path: Path
) -> None:
    assert send(listener, *MAPPED) == ["AA", "AA", "AA"]
    hub.start()
    assert_hub_holds_each_patient_once(hub, tmp_path / "outbox.sqlite")
