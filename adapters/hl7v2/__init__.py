"""HL7 v2.3-2.8 messages to FHIR R4 transaction Bundles.

`parse(text, facility)`, or `parse_file(path, facility)` reading a file a message at a time,
yields one Bundle per message it maps, or a Rejection naming the message and what is wrong:
a type not mapped, a message that does not parse, or one that lacks what its mapping needs.
Message families and their resources:
ADT (A01 A02 A03 A04 A05 A08 A11 A13 A28 A31: Patient, Encounter, Conditions of DG1; A40:
Patient.link),
ORU^R01 (DiagnosticReport, Observation), VXU^V04 (Immunization), RDE and RDS
(MedicationRequest, MedicationDispense), SIU (Appointment), MDM (DocumentReference).
"""

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from adapters.base import Facility, Output, Rejection

from .adt import TRIGGERS as ADT_TRIGGERS
from .adt import map_adt
from .common import Context, MappingError
from .mdm import map_mdm
from .message import Message, ParseError, parse_message, split_messages
from .oru import map_oru
from .pharmacy import map_pharmacy
from .siu import map_siu
from .vxu import map_vxu

__all__ = ["MAPPED", "map_message", "parse", "parse_file", "parse_message", "split_messages"]

Mapping = Callable[[Context], None]
SIU_TRIGGERS = {f"S{n}" for n in range(12, 27)}
MDM_TRIGGERS = {f"T{n:02d}" for n in range(1, 12)}
# Message type -> (triggers taken, or None for any; its mapping).
MAPPED: dict[str, tuple[set[str] | None, Mapping]] = {
    "ADT": (ADT_TRIGGERS, map_adt),
    "ORU": ({"R01"}, map_oru),
    "VXU": ({"V04"}, map_vxu),
    "RDE": (None, map_pharmacy),
    "RDS": (None, map_pharmacy),
    "SIU": (SIU_TRIGGERS, map_siu),
    "MDM": (MDM_TRIGGERS, map_mdm),
}
TAKEN = (
    "the hub takes ADT^A01/A02/A03/A04/A05/A08/A11/A13/A28/A31/A40, ORU^R01, VXU^V04, "
    "RDE, RDS, SIU^S12-S26 and MDM^T01-T11"
)


def parse(text: str | Iterable[str], facility: Facility, source: str = "") -> Iterator[Output]:
    """Yield a transaction Bundle, or a Rejection, for each message in an HL7 v2 text (or
    in its lines, taken one message at a time)."""
    for number, lines in enumerate(split_messages(text), 1):
        where = f"{source} message {number}".strip()
        try:
            message = parse_message(lines)
        except ParseError as error:
            yield Rejection(where, f"cannot parse: {error}")
            continue
        where += f" (MSH-10 {message.control_id})" if message.control_id else ""
        yield map_message(message, facility, where)


def parse_file(path: Path, facility: Facility) -> Iterator[Output]:
    """Yield the outputs of an HL7 v2 file, read a message at a time: memory holds one message.

    Universal newlines turn CR, LF and CRLF segment ends into lines; bytes that are not UTF-8
    are replaced, as for a text.
    """
    with path.open(encoding="utf-8", errors="replace") as lines:
        yield from parse(lines, facility, str(path))


def map_message(message: Message, facility: Facility, where: str = "") -> Output:
    """Return the Bundle of one parsed message, or a Rejection saying why there is none."""
    name = f"{message.type}^{message.trigger}"
    triggers, mapping = MAPPED.get(message.type, (set(), None))
    if mapping is None or (triggers is not None and message.trigger not in triggers):
        return Rejection(where, f"{name} is not mapped; {TAKEN}")
    ctx = Context(message, facility)
    try:
        mapping(ctx)
    except MappingError as error:
        return Rejection(where, f"{name}: {error}")
    return ctx.builder.bundle()
