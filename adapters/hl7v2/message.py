"""A small HL7 v2 parser: messages into segments, fields, repetitions, components and
subcomponents, with the separators each message declares in MSH-1 and MSH-2.

Real feeds are messy, so segments may end in CR, LF or CRLF, a UTF-8 byte-order mark is
dropped, trailing blanks are ignored, and escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\,
\\Xhh..\\ and \\.br\\) are decoded. Z-segments are kept like any other; mappings ignore them.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SEGMENT_END = re.compile(r"\r\n|\r|\n")
SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
BATCH_SEGMENTS = {"FHS", "FTS", "BHS", "BTS"}
DEFAULT_ENCODING = "^~\\&"

# Components of one repetition; each component is its list of subcomponents.
Components = list[list[str]]


class ParseError(ValueError):
    """A message that cannot be read as HL7 v2, with what is wrong and where."""


@dataclass(frozen=True)
class Separators:
    """The delimiters a message declares in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def unescape(self, text: str) -> str:
        """Decode the escape sequences of one subcomponent."""
        esc = self.escape
        if not esc or esc not in text:
            return text
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            end = text.find(esc, i + 1) if char == esc else -1
            if end < 0:
                out.append(char)
                i += 1
                continue
            out.append(self._escape_sequence(text[i + 1 : end], text[i : end + 1]))
            i = end + 1
        return "".join(out)

    def _escape_sequence(self, code: str, raw: str) -> str:
        simple = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            ".br": "\n",
            "H": "",  # start and end of highlighting: no place for it in FHIR text
            "N": "",
        }
        if code in simple:
            return simple[code]
        if code.startswith("X") and re.fullmatch(r"X(?:[0-9A-Fa-f]{2})+", code):
            data = bytes.fromhex(code[1:])
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("latin-1")
        return raw  # unknown sequences are kept as sent rather than lost


@dataclass(frozen=True)
class Repetition:
    """One repetition of a field: its components and their subcomponents, decoded."""

    components: Components

    def get(self, component: int = 1, subcomponent: int = 1) -> str:
        """Return a component (1-based) or one of its subcomponents, or "" if absent."""
        if component > len(self.components):
            return ""
        subs = self.components[component - 1]
        return subs[subcomponent - 1].strip() if subcomponent <= len(subs) else ""

    def __bool__(self) -> bool:
        return any(s.strip() for subs in self.components for s in subs)


@dataclass(frozen=True)
class Segment:
    """A segment: its name and fields, numbered as in the HL7 standard (PID-3 is `field(3)`)."""

    name: str
    fields: list[list[Repetition]]

    def reps(self, number: int) -> list[Repetition]:
        """Return the non-empty repetitions of a field."""
        if number >= len(self.fields):
            return []
        return [r for r in self.fields[number] if r]

    def rep(self, number: int) -> Repetition:
        """Return a field's first repetition (empty if the field is)."""
        found = self.reps(number)
        return found[0] if found else Repetition([])

    def get(self, number: int, component: int = 1, subcomponent: int = 1) -> str:
        """Return one value of the first repetition of a field, or "" if absent."""
        return self.rep(number).get(component, subcomponent)


@dataclass(frozen=True)
class Message:
    """One HL7 v2 message: its segments in order, MSH first."""

    segments: list[Segment]
    separators: Separators

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def type(self) -> str:
        """MSH-9.1, e.g. ADT."""
        return self.msh.get(9, 1).upper()

    @property
    def trigger(self) -> str:
        """MSH-9.2, e.g. A01."""
        return self.msh.get(9, 2).upper()

    @property
    def control_id(self) -> str:
        """MSH-10, the sender's message control id."""
        return self.msh.get(10)

    def first(self, name: str) -> Segment | None:
        """Return the first segment with this name, if any."""
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        """Return every segment with this name, in order."""
        return [s for s in self.segments if s.name == name]


def split_messages(source: str | Iterable[str]) -> Iterator[list[str]]:
    """Yield the segment lines of each message, each starting at an MSH, from a text or from
    its lines as they are read (a file opened with universal newlines: CR, LF or CRLF)."""
    lines = SEGMENT_END.split(source) if isinstance(source, str) else source
    current: list[str] = []
    for line in lines:
        line = line.lstrip("\ufeff").rstrip()
        if not line or line[:3] in BATCH_SEGMENTS:
            continue
        if line.startswith("MSH") and current:
            yield current
            current = []
        current.append(line)
    if current:
        yield current


def parse_message(lines: list[str]) -> Message:
    """Parse one message's segment lines; raise ParseError naming what is wrong."""
    head = lines[0]
    if not head.startswith("MSH") or len(head) < 8:
        raise ParseError(f"a message must start with an MSH segment, not {head[:20]!r}")
    field_sep = head[3]
    encoding = head[4:].split(field_sep, 1)[0]
    if len(encoding) < 2 or field_sep.isalnum() or field_sep in encoding:
        raise ParseError(f"MSH-1/MSH-2 do not declare separators: {head[:12]!r}")
    chars = (encoding + DEFAULT_ENCODING[len(encoding) :])[:4]
    seps = Separators(field_sep, chars[0], chars[1], chars[2], chars[3])
    if len({field_sep, *chars}) != 5:
        raise ParseError(f"MSH-2 repeats a separator: {encoding!r}")
    segments = [_parse_segment(line, seps, number) for number, line in enumerate(lines, 1)]
    return Message(segments, seps)


def _parse_segment(line: str, seps: Separators, number: int) -> Segment:
    name = line[:3]
    if not SEGMENT_NAME.match(name) or (len(line) > 3 and line[3] != seps.field):
        raise ParseError(f"segment {number} is not an HL7 segment: {line[:20]!r}")
    raw = line.split(seps.field)
    if name == "MSH":
        # MSH-1 is the field separator itself and MSH-2 the encoding characters: never split.
        fields = [[Repetition([[name]])], [Repetition([[seps.field]])]]
        fields.append([Repetition([[raw[1]]])])
        fields += [_parse_field(f, seps) for f in raw[2:]]
    else:
        fields = [[Repetition([[name]])]] + [_parse_field(f, seps) for f in raw[1:]]
    return Segment(name, fields)


def _parse_field(text: str, seps: Separators) -> list[Repetition]:
    return [
        Repetition(
            [
                [seps.unescape(sub) for sub in component.split(seps.subcomponent)]
                for component in rep.split(seps.component)
            ]
        )
        for rep in text.split(seps.repetition)
    ]
