"""The per-event limits of the audit record: what is over them is counted, not listed."""

from hub.audit.record import Record


def test_resources_and_patients_over_the_limits_are_counted_not_listed() -> None:
    record = Record(max_listed=2, max_indexed=3)
    for n in range(5):
        record.resource(f"Observation/o{n}")
        record.patient(f"Patient/p{n}")
    record.resource("Observation/o0")  # seen already: not counted twice
    assert record.resources == ["Observation/o0", "Observation/o1"]
    assert record.resources_left_out == 3
    assert record.patients == ["Patient/p0", "Patient/p1", "Patient/p2"]
    assert record.patients_left_out == 2
