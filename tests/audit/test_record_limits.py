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


def test_each_listed_resource_keeps_its_compartment() -> None:
    record = Record(max_listed=2)
    record.resource("Patient/p1")
    record.resource_json(
        {
            "resourceType": "Observation",
            "id": "o1",
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p2"}, {"reference": "Patient/p1"}],
        }
    )
    record.resource_json(
        {"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p3"}}
    )
    # A written Bundle's entries, then the response that says which resource each became.
    record.written({"entry": [{"resource": {"resourceType": "Patient"}}]})
    record.result(
        {"resourceType": "Bundle", "entry": [{"response": {"location": "Patient/p9/_history/1"}}]},
        None,
    )
    assert record.compartments == {
        "Patient/p1": ["Patient/p1"],
        "Observation/o1": ["Patient/p1", "Patient/p2"],
    }
    assert record.resources_left_out == 2  # o2 and p9: counted, their compartments not kept
    assert record.patients == ["Patient/p1", "Patient/p2", "Patient/p3", "Patient/p9"]
