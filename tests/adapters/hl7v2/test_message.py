"""Unit tests of the HL7 v2 parser: separators, escapes, empty fields, repetitions."""

import pytest

from adapters.hl7v2.message import ParseError, Separators, parse_message, split_messages

ADT = (
    "MSH|^~\\&|APP|FAC|HUB|MOH|20240102030405+0700||ADT^A01^ADT_A01|CTRL1|P|2.5\r"
    "PID|1||MRN1^^^H^MR~123456789012^^^VN^NI||Nguyen\\S\\Van^An~Tran^Binh||19850412|M\r"
    "ZPI|anything|here\r"
)


def parse_one(text: str) -> object:
    return parse_message(next(split_messages(text)))


def test_fields_components_and_repetitions() -> None:
    message = parse_message(next(split_messages(ADT)))
    pid = message.first("PID")
    assert pid is not None
    assert message.type == "ADT" and message.trigger == "A01" and message.control_id == "CTRL1"
    assert [r.get(1) for r in pid.reps(3)] == ["MRN1", "123456789012"]
    assert pid.reps(3)[1].get(5) == "NI"
    assert pid.get(5) == "Nguyen^Van"  # \S\ is a literal component separator
    assert pid.get(5, 2) == "An"
    assert pid.reps(5)[1].get(1) == "Tran"


def test_msh_fields_are_numbered_as_in_the_standard() -> None:
    msh = parse_message(next(split_messages(ADT))).msh
    assert msh.get(1) == "|"
    assert msh.get(2) == "^~\\&"
    assert msh.get(3) == "APP"
    assert msh.get(9, 3) == "ADT_A01"
    assert msh.get(12) == "2.5"


def test_empty_and_missing_fields_are_empty() -> None:
    pid = parse_message(next(split_messages(ADT))).first("PID")
    assert pid is not None
    assert pid.get(2) == "" and pid.reps(2) == []
    assert pid.get(99) == "" and pid.get(3, 9) == "" and pid.get(3, 1, 5) == ""


def test_z_segments_are_kept() -> None:
    message = parse_message(next(split_messages(ADT)))
    assert [s.name for s in message.segments] == ["MSH", "PID", "ZPI"]


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("A\\F\\B", "A|B"),
        ("A\\S\\B", "A^B"),
        ("A\\T\\E", "A&E"),
        ("A\\R\\B", "A~B"),
        ("C:\\E\\temp", "C:\\temp"),
        ("line\\.br\\next", "line\nnext"),
        ("Nguy\\XE1BB85\\n", "Nguyễn"),
        ("\\H\\bold\\N\\", "bold"),
        ("odd \\Z99\\ kept", "odd \\Z99\\ kept"),
        ("no end \\", "no end \\"),
    ],
)
def test_escape_sequences(raw: str, decoded: str) -> None:
    assert Separators().unescape(raw) == decoded


def test_other_separators_are_read_from_msh() -> None:
    text = "MSH#*!$@#APP#FAC###20240102##ORU*R01#C2#P#2.3\nOBX#1#ST#X*Code#x#a!b#u$F$c\n"
    message = parse_message(next(split_messages(text)))
    obx = message.first("OBX")
    assert obx is not None
    assert message.type == "ORU" and message.trigger == "R01"
    assert obx.get(3, 2) == "Code"
    assert [r.get(1) for r in obx.reps(5)] == ["a", "b"]
    assert obx.get(6) == "u#c"  # $F$ is the field separator, escaped with $


def test_line_ends_bom_and_several_messages() -> None:
    text = "\ufeff" + ADT.replace("\r", "\r\n") + "\n\n" + ADT.replace("\r", "\n")
    messages = [parse_message(lines) for lines in split_messages(text)]
    assert len(messages) == 2
    assert all(len(m.segments) == 3 for m in messages)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("PID|1||X\r", "must start with an MSH"),
        ("MSH|\r", "must start with an MSH"),
        ("MSH|^^~\\|A|B\r", "repeats a separator"),
        ("MSH|^~\\&|A\rpid|1\r", "segment 2 is not an HL7 segment"),
    ],
)
def test_unreadable_messages_raise_parse_errors(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_one(text)
