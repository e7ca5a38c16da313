"""An HL7 v2 file is read a message at a time, with the same outputs as its whole text."""

import os
import re
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import pytest
from support import FIXTURES

from adapters.base import Facility
from adapters.hl7v2 import parse, parse_file, split_messages
from adapters.sync.sources import FORMATS

FACILITY = Facility("79001", "Streaming test hospital")
BOM = b"\xef\xbb\xbf"
# The fixture files, all of them one after another (each may start with a byte-order mark).
ALL_FIXTURES = b"\n".join(p.read_bytes() for p in sorted((FIXTURES / "hl7v2").glob("*.hl7")))
LF_ENDS = ALL_FIXTURES.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
PID_5 = re.compile(rb"^(PID(?:\|[^|\n]*){4}\|)", re.MULTILINE)

# Each way a real feed writes the same messages.
VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "LF, BOMs as in the fixtures": lambda text: text,
    "CR": lambda text: text.replace(b"\n", b"\r"),
    "CRLF": lambda text: text.replace(b"\n", b"\r\n"),
    "BOM at the start, CRLF": lambda text: BOM + text.replace(BOM, b"").replace(b"\n", b"\r\n"),
    "batch segments, CR": lambda text: (
        b"FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r" + text.replace(b"\n", b"\r") + b"BTS|1\rFTS|1\r"
    ),
    # A family name in Latin-1, not UTF-8, at the start of PID-5.
    "bytes that are not UTF-8": lambda text: PID_5.sub(b"\\1Nguy\xean ", text),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_file_read_as_it_goes_gives_what_its_whole_text_gives(
    variant: str, tmp_path: Path
) -> None:
    path = tmp_path / "feed.hl7"
    path.write_bytes(VARIANTS[variant](LF_ENDS))
    whole = list(parse(path.read_bytes().decode("utf-8", errors="replace"), FACILITY, str(path)))
    streamed = list(FORMATS["hl7v2"](path, FACILITY))
    assert len(whole) > 100  # every fixture message, none run together
    assert streamed == whole


def test_a_message_is_yielded_once_the_next_one_starts() -> None:
    first, second = list(split_messages(LF_ENDS.decode("utf-8-sig")))[:2]

    def lines() -> Iterator[str]:
        yield from chain(first, second[:1])
        raise AssertionError("read past the start of the second message")

    assert next(parse(lines(), FACILITY)) == next(parse("\r".join(first), FACILITY))


def test_a_file_is_not_read_ahead_of_its_messages(tmp_path: Path) -> None:
    message = (FIXTURES / "hl7v2" / "ADT-A01-01.hl7").read_bytes().replace(BOM, b"")
    path = tmp_path / "large.hl7"
    path.write_bytes(message * 200)  # 1.7 MB, 200 messages
    outputs = parse_file(path, FACILITY)
    next(outputs)
    # Cut the file: only what was read so far (one buffer) can still come out.
    os.truncate(path, 0)
    assert 1 + sum(1 for _ in outputs) < 20
