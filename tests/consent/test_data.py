"""provision.data (instance, related, dependents) and provision.dataPeriod, decided record by
record."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from consent import Access, MalformedConsent, Policy, Record, data_references

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
VIETNAM = timezone(timedelta(hours=7))
ASKING = Access("79001", NOW)


def consent(provision: dict[str, Any], cid: str = "c1") -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": SCOPE,
        "provision": provision,
    }


def data(meaning: str, reference: str) -> dict[str, Any]:
    return {"meaning": meaning, "reference": {"reference": reference}}


def record(
    key: str,
    *refers_to: str,
    period: tuple[datetime, datetime] | None = None,
    facility: str = "79002",
) -> Record:
    return Record(
        facility,
        key.partition("/")[0],
        key=key,
        references=frozenset(refers_to),
        period=period,
    )


def allowed(
    provision: dict[str, Any],
    rec: Record,
    *,
    default: str = "permit",
    related: dict[str, frozenset[str]] | None = None,
    zone: timezone = UTC,
) -> bool:
    policy = Policy.from_consents(
        [consent(provision)], {}, default, related=related or {}, zone=zone
    )
    return policy.decide(ASKING, rec).allowed


# provision.data


def test_instance_covers_that_record_only() -> None:
    deny = {"type": "deny", "data": [data("instance", "Observation/o1")]}
    assert not allowed(deny, record("Observation/o1", "Encounter/e1"))
    assert allowed(deny, record("Observation/o2"))
    # A record that refers to it is not the instance.
    assert allowed(deny, record("DiagnosticReport/r1", "Observation/o1"))


def test_related_covers_the_record_and_what_it_refers_to() -> None:
    # Task/t1 refers to MedicationRequest/m1 and Patient/p1 (as the hub found it).
    related = {"Task/t1": frozenset({"MedicationRequest/m1", "Patient/p1"})}
    deny = {"type": "deny", "data": [data("related", "Task/t1")]}
    assert not allowed(deny, record("Task/t1"), related=related)
    assert not allowed(deny, record("MedicationRequest/m1"), related=related)
    assert not allowed(deny, record("Patient/p1"), related=related)
    assert allowed(deny, record("MedicationRequest/m2"), related=related)
    # What refers to the task is its dependent, not related.
    assert allowed(deny, record("Provenance/v1", "Task/t1"), related=related)


def test_related_of_a_record_that_refers_to_nothing_is_the_record() -> None:
    deny = {"type": "deny", "data": [data("related", "Task/t1")]}
    assert not allowed(deny, record("Task/t1"), related={"Task/t1": frozenset()})
    assert allowed(deny, record("Task/t2"), related={"Task/t1": frozenset()})


def test_dependents_cover_one_visit_and_what_it_contains() -> None:
    deny = {"type": "deny", "data": [data("dependents", "Encounter/e1")]}
    assert not allowed(deny, record("Encounter/e1", "Patient/p1"))
    assert not allowed(deny, record("Observation/o1", "Patient/p1", "Encounter/e1"))
    assert not allowed(deny, record("Condition/c1", "Encounter/e1"))
    assert allowed(deny, record("Observation/o2", "Encounter/e2"))
    # What the encounter refers to is not its dependent.
    assert allowed(deny, record("Patient/p1"))


def test_a_permit_of_data_permits_nothing_else() -> None:
    permit = {"type": "permit", "data": [data("dependents", "Encounter/e1")]}
    assert allowed(permit, record("Observation/o1", "Encounter/e1"), default="deny")
    assert not allowed(permit, record("Observation/o2", "Encounter/e2"), default="deny")
    # A record without a key is only covered by referring to the encounter.
    assert not allowed(permit, record(""), default="deny")


def test_several_data_items_cover_any_of_them() -> None:
    deny = {
        "type": "deny",
        "data": [data("instance", "Observation/o1"), data("dependents", "Encounter/e9")],
    }
    assert not allowed(deny, record("Observation/o1"))
    assert not allowed(deny, record("Procedure/x", "Encounter/e9"))
    assert allowed(deny, record("Observation/o3"))


def test_data_references_lists_the_related_records_to_look_up() -> None:
    resource = consent(
        {
            "type": "permit",
            "data": [data("related", "Task/t1"), data("instance", "Observation/o1")],
            "provision": [
                {
                    "type": "deny",
                    "data": [
                        data("related", "ServiceRequest/s1"),
                        data("dependents", "Encounter/e1"),
                        data("related", "https://x.example/fhir/Task/t9"),
                    ],
                }
            ],
        }
    )
    assert data_references([resource]) == {"Task/t1", "ServiceRequest/s1"}


def test_a_related_record_the_hub_did_not_find_makes_the_consent_unreadable() -> None:
    deny = consent({"type": "deny", "data": [data("related", "Task/t1")]})
    with pytest.raises(MalformedConsent) as caught:
        Policy.from_consents([deny], {}, "permit", related={"Task/t2": frozenset()})
    assert caught.value.path == "Consent.provision.data[0].reference.reference"
    assert "Task/t1 is not a stored record" in str(caught.value)


@pytest.mark.parametrize(
    ("item", "path", "problem"),
    [
        (data("authoredby", "Practitioner/d1"), "data[0].meaning", "authoredby cannot be enforced"),
        ({"reference": {"reference": "Task/t1"}}, "data[0].meaning", "expected one of"),
        (data("sometimes", "Task/t1"), "data[0].meaning", "expected one of"),
        (
            {"meaning": "instance", "reference": {"identifier": {"system": "urn:x", "value": "1"}}},
            "data[0].reference.reference",
            "missing: a literal relative reference",
        ),
        (
            data("instance", "https://other.example/fhir/Observation/o1"),
            "data[0].reference.reference",
            "expected a literal relative reference",
        ),
        (
            data("instance", "Observation/o1/_history/2"),
            "data[0].reference.reference",
            "version-specific",
        ),
        (data("instance", "#contained"), "data[0].reference.reference", "contained"),
        ({"meaning": "instance"}, "data[0].reference", "missing"),
        (
            {"meaning": "instance", "reference": {"reference": "Task/t1"}, "modifierExtension": []},
            "data[0].modifierExtension",
            "changes the meaning",
        ),
    ],
)
def test_data_that_cannot_be_enforced_is_refused(item: Any, path: str, problem: str) -> None:
    with pytest.raises(MalformedConsent) as caught:
        Policy.from_consents([consent({"type": "deny", "data": [item]})], {}, "permit")
    assert caught.value.path == f"Consent.provision.{path}"
    assert problem in str(caught.value)


# provision.dataPeriod


def day_in(zone: timezone, y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=zone)


JANUARY = {"type": "deny", "dataPeriod": {"start": "2025-01-01", "end": "2025-01-31"}}


def at(instant: datetime, length: timedelta = timedelta(hours=1)) -> Record:
    return record("Observation/o1", period=(instant, instant + length))


def test_data_period_covers_records_whose_period_overlaps_it() -> None:
    def hidden(rec: Record) -> bool:
        return not allowed(JANUARY, rec, zone=VIETNAM)

    start = day_in(VIETNAM, 2025, 1, 1)  # 2024-12-31T17:00Z
    after = day_in(VIETNAM, 2025, 2, 1)  # the instant after 31 January, local
    assert hidden(at(start + timedelta(days=10)))
    # Periods are [start, end): one ending where January starts does not overlap it.
    assert not hidden(record("Observation/o1", period=(start - timedelta(days=1), start)))
    assert hidden(
        record(
            "Observation/o1", period=(start - timedelta(days=1), start + timedelta(microseconds=1))
        )
    )
    assert not hidden(at(after))
    assert hidden(at(after - timedelta(microseconds=1)))
    # An instant (start == end) inside it, also on its first instant.
    assert hidden(record("Observation/o1", period=(start, start)))
    assert not hidden(record("Observation/o1", period=(after, after)))
    # A long stay that spans January overlaps it.
    assert hidden(
        record("Encounter/e1", period=(start - timedelta(days=30), after + timedelta(days=30)))
    )


def test_a_record_without_a_period_is_not_covered() -> None:
    assert allowed(JANUARY, record("Observation/o1"))
    permit = dict(JANUARY, type="permit")
    assert not allowed(permit, record("Observation/o1"), default="deny")


def test_a_date_only_data_period_ends_at_local_midnight_of_the_zone() -> None:
    last_minute_in_hanoi = datetime(2025, 1, 31, 16, 59, tzinfo=UTC)
    first_minute_of_february_in_hanoi = datetime(2025, 1, 31, 17, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    assert not allowed(JANUARY, at(last_minute_in_hanoi, minute), zone=VIETNAM)
    assert allowed(JANUARY, at(first_minute_of_february_in_hanoi, minute), zone=VIETNAM)
    # In UTC that minute is still 31 January.
    assert not allowed(JANUARY, at(first_minute_of_february_in_hanoi, minute), zone=UTC)
    # And the local first day starts seven hours before UTC's.
    assert not allowed(JANUARY, at(datetime(2024, 12, 31, 17, 0, tzinfo=UTC), minute), zone=VIETNAM)
    assert allowed(JANUARY, at(datetime(2024, 12, 31, 17, 0, tzinfo=UTC), minute), zone=UTC)


def test_open_ended_data_periods() -> None:
    before_2020 = {"type": "deny", "dataPeriod": {"end": "2019-12-31"}}
    since_2024 = {"type": "deny", "dataPeriod": {"start": "2024"}}
    old = at(datetime(2010, 5, 1, tzinfo=UTC))
    recent = at(datetime(2024, 1, 1, tzinfo=UTC))
    assert not allowed(before_2020, old) and allowed(before_2020, recent)
    assert allowed(since_2024, old) and not allowed(since_2024, recent)


@pytest.mark.parametrize(
    ("period", "path", "problem"),
    [
        ({}, "dataPeriod", "expected a Period"),
        ({"start": "2025-02-01", "end": "2025-01-01"}, "dataPeriod", "end is before start"),
        ({"start": "last year"}, "dataPeriod.start", "not a FHIR dateTime"),
    ],
)
def test_a_data_period_that_cannot_be_read(period: Any, path: str, problem: str) -> None:
    with pytest.raises(MalformedConsent) as caught:
        Policy.from_consents([consent({"type": "deny", "dataPeriod": period})], {}, "permit")
    assert caught.value.path == f"Consent.provision.{path}"
    assert problem in str(caught.value)
