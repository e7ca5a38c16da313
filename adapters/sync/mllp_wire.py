"""What travels over an MLLP connection: frames (0x0B message 0x1C 0x0D) and HL7 v2 ACKs.

MLLP is HL7's Minimal Lower Layer Protocol (HL7 v2.5.1 Implementation Guide, Appendix C):
each message is sent as a start block, the message, an end block and a carriage return; the
receiver answers each with an ACK framed the same way. The ACK's MSH swaps the original's
sender (MSH-3/4) and receiver (MSH-5/6), its MSA echoes the original's MSH-10.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from adapters.base import TZ_VN

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\r"
SEGMENT_END = "\r"
DEFAULT_HEADER = "MSH|^~\\&"
ACCEPTED = "AA"
REJECTED = "AR"
ERROR = "AE"


@dataclass(frozen=True)
class TooLarge:
    """A frame longer than the limit: its first bytes (to answer it) and its size."""

    head: bytes
    size: int


# What of an oversized frame is kept to read its MSH and answer it.
HEAD_BYTES = 4096


class FrameReader:
    """Cuts a byte stream, read in chunks of any size, into MLLP frames' messages.

    Bytes outside a frame (line noise, a keep-alive newline) are dropped; a start block inside
    a frame abandons the unfinished frame, since its sender evidently started over. A frame
    longer than `max_bytes` is not held: its head is kept, the rest skipped to its end block,
    and it is given as a TooLarge so that the sender hears why.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self._max = max_bytes
        self._skipped: TooLarge | None = None

    def feed(self, data: bytes) -> list[bytes | TooLarge]:
        """Take the next chunk read; return the messages whose frames it completes."""
        self._buffer += data
        found: list[bytes | TooLarge] = []
        while True:
            if not self._in_frame:
                start = self._buffer.find(START_BLOCK)
                if start < 0:
                    self._buffer.clear()
                    return found
                del self._buffer[: start + 1]
                self._in_frame, self._skipped = True, None
            end = self._buffer.find(END_BLOCK)
            restart = self._buffer.find(START_BLOCK)
            if 0 <= restart and (end < 0 or restart < end):
                del self._buffer[: restart + 1]
                self._skipped = None
                continue
            if end < 0:
                self._skip_beyond_limit()
                return found
            if self._skipped is None:
                found.append(bytes(self._buffer[:end]))
            else:
                size = self._skipped.size + end
                found.append(TooLarge(self._skipped.head, size))
            del self._buffer[: end + len(END_BLOCK)]
            self._in_frame, self._skipped = False, None

    def _skip_beyond_limit(self) -> None:
        """Drop an unfinished frame's bytes once it is over the limit, keeping its head (and
        the last byte, which may be the first of the end block)."""
        held = len(self._buffer) + (self._skipped.size if self._skipped else 0)
        if self._max is None or held <= self._max or len(self._buffer) < 2:
            return
        if self._skipped is None:
            self._skipped = TooLarge(bytes(self._buffer[:HEAD_BYTES]), 0)
        dropped = len(self._buffer) - 1
        self._skipped = TooLarge(self._skipped.head, self._skipped.size + dropped)
        del self._buffer[:dropped]

    @property
    def held(self) -> int:
        """Return how many bytes are held in memory now."""
        return len(self._buffer) + (len(self._skipped.head) if self._skipped else 0)

    @property
    def pending(self) -> int:
        """Return how many bytes of an unfinished frame were received."""
        if not self._in_frame:
            return 0
        return len(self._buffer) + (self._skipped.size if self._skipped else 0)


def frame(message: str) -> bytes:
    """Return a message framed for MLLP."""
    return START_BLOCK + message.encode("utf-8") + END_BLOCK


def decode(data: bytes) -> str:
    """Return a frame's text: UTF-8 when it is, else Latin-1 (which every byte string is)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@dataclass(frozen=True)
class Header:
    """The raw fields of an original message's MSH that its ACK needs, as sent (not decoded)."""

    fields: list[str]  # fields[n] is MSH-(n+1) for n >= 1; fields[1] is MSH-2

    @classmethod
    def of(cls, text: str) -> "Header":
        """Return the header of a message's text (a bare default one if it has no MSH)."""
        head = text.lstrip("\ufeff\r\n \t").split("\r", 1)[0].split("\n", 1)[0]
        if not head.startswith("MSH") or len(head) < 8 or head[3].isalnum():
            head = DEFAULT_HEADER
        return cls(head.split(head[3]))

    def field(self, number: int) -> str:
        """Return MSH-n as sent, or "" if absent."""
        return self.fields[number - 1] if 1 < number <= len(self.fields) else ""

    @property
    def separator(self) -> str:
        return self.fields[0][3] if len(self.fields[0]) > 3 else "|"

    @property
    def encoding(self) -> str:
        return self.fields[1] if len(self.fields) > 1 else "^~\\&"

    @property
    def control_id(self) -> str:
        return self.field(10)

    @property
    def trigger(self) -> str:
        return self._component(self.field(9), 2)

    def _component(self, value: str, number: int) -> str:
        parts = value.split(self.encoding[:1] or "^")
        return parts[number - 1] if number <= len(parts) else ""


def escape(text: str, separator: str = "|", encoding: str = "^~\\&") -> str:
    """Return text with HL7's escape sequences for the message's own delimiters."""
    chars = (encoding + "^~\\&"[len(encoding) :])[:4]
    component, repetition, esc, subcomponent = chars[0], chars[1], chars[2], chars[3]
    codes = {esc: "E", separator: "F", component: "S", subcomponent: "T", repetition: "R"}
    text = " ".join(text.split())  # a line break would end the segment
    return "".join(f"{esc}{codes[c]}{esc}" if c in codes else c for c in text)


def build_ack(original: Header, code: str, text: str = "", now: datetime | None = None) -> str:
    """Return the ACK of a message: AA (taken), AR (refused: do not resend) or AE (failed:
    resend later), with the reason in MSA-3, segments ending in CR."""
    sep = original.separator
    when = (now or datetime.now(TZ_VN)).strftime("%Y%m%d%H%M%S%z")
    msh = [
        "MSH",
        original.encoding,
        original.field(5),
        original.field(6),
        original.field(3),
        original.field(4),
        when,
        "",
        f"ACK{original.encoding[0]}{original.trigger}{original.encoding[0]}ACK",
        uuid.uuid4().hex[:20],
        original.field(11) or "P",
        original.field(12) or "2.5",
    ]
    msa = ["MSA", code, original.control_id]
    if text:
        msa.append(escape(text, sep, original.encoding))
    return SEGMENT_END.join(sep.join(segment) for segment in (msh, msa)) + SEGMENT_END
