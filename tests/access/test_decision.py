"""The one access decision, on its own: `hub.access.decision.decide` over hand-made versions.

Every read path asks this function (tests/consent_access/test_model.py holds the paths to
it); here each rule is checked where the database's narrowing cannot mask it: a record of a
person the request does not name, a second person's refusal, a patient's record shared with
another person, the current version hiding an earlier one, break the glass for one person.
"""

from datetime import UTC, datetime
from typing import Any

from consent import Policy
from hub.access.decision import Facts, Viewer, decide
from hub.access.persons import Person
from hub.auth.roles import Role
from hub.store.resources import Stored

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
Y, Z = Person(("y1", "y2"), "001"), Person(("z1",), "002")
PERSONS = {"y1": Y, "y2": Y, "z1": Z}
PSY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}


def version(
    holder: str | None, *patients: str, shared: bool = False, labels: Any = (), v: int = 1
) -> Stored:
    """Return a stored Observation version held by `holder`, concerning these Patients."""
    see = [f"f:{holder}"] if holder else []
    see += [f"p:{p}" for p in patients] + (["shared"] if shared else [])
    internal: dict[str, Any] = {"v": v, "ts": NOW, "see": see}
    if holder:
        internal["fac"] = holder
    return Stored(
        {
            "resourceType": "Practitioner" if shared else "Observation",
            "id": "o1",
            "meta": {"security": list(labels)},
            "_hub": internal,
        }
    )


def policy(provision: dict[str, Any] | None) -> Policy:
    """Return the policy of one person-wide Consent with this root provision (none: no consent)."""
    consents = []
    if provision is not None:
        consents.append(
            {
                "resourceType": "Consent",
                "id": "c1",
                "status": "active",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "patient-privacy",
                        }
                    ]
                },
                "patient": {"reference": "Patient/y1"},
                "provision": provision,
            }
        )
    return Policy.from_consents(consents, {}, "deny")


PERMIT, DENY, SILENT = policy({"type": "permit"}), policy({"type": "deny"}), policy(None)
NO_PSY = policy({"type": "permit", "provision": [{"type": "deny", "securityLabel": [PSY]}]})


def clinician(**changes: Any) -> Viewer:
    fields: dict[str, Any] = {"role": Role.CLINICIAN, "at": NOW, "facility": "C"}
    return Viewer(**(fields | changes))


def facts(y: Policy | None = PERMIT, z: Policy | None = PERMIT) -> Facts:
    return Facts(PERSONS, {Y: y, Z: z})


def test_a_facility_system_sees_what_its_facility_holds() -> None:
    system = Viewer(role=Role.FACILITY, at=NOW, facility="A")
    assert decide(system, facts(), version("A", "y1"))
    assert not decide(system, facts(), version("B", "y1"))
    assert not decide(system, facts(), version(None, "y1"))
    assert not decide(system, facts(), version("B", shared=True))


def test_shared_reference_data_is_for_clinicians_patients_and_admins() -> None:
    practitioner = version("B", shared=True)
    for role in (Role.CLINICIAN, Role.PATIENT, Role.ADMIN):
        assert decide(Viewer(role=role, at=NOW, facility="C"), facts(), practitioner)
    for role in (Role.AUDITOR, Role.MINISTRY):
        assert not decide(Viewer(role=role, at=NOW), facts(), practitioner)
    assert not decide(Viewer(role=Role.ADMIN, at=NOW), facts(), version("B", "y1"))


def test_a_clinician_reaches_only_the_persons_the_request_names() -> None:
    record = version("A", "y1")
    assert decide(clinician(named=frozenset(Y.patients)), facts(), record)
    assert not decide(clinician(), facts(), record)
    assert not decide(clinician(named=frozenset(Z.patients)), facts(), record)
    # Their own facility's records need no naming and no consent.
    assert decide(clinician(), facts(y=DENY), version("C", "y1"))


def test_every_person_a_record_concerns_must_allow_it() -> None:
    both = version("A", "y1", "z1")
    named = clinician(named=frozenset(Z.patients))
    assert decide(named, facts(), both)
    assert not decide(named, facts(y=DENY), both)
    assert not decide(named, facts(z=DENY), both)
    assert not decide(named, facts(y=SILENT), both)  # the default is deny


def test_an_unreadable_policy_hides_everything_held_elsewhere() -> None:
    named = clinician(named=frozenset(Y.patients))
    assert not decide(named, facts(y=None), version("A", "y1"))
    assert decide(named, facts(y=None), version("C", "y1"))


def test_a_patient_sees_what_concerns_them_alone() -> None:
    own = Viewer(role=Role.PATIENT, at=NOW, own=frozenset(Y.patients))
    assert decide(own, facts(), version("A", "y2"))
    assert decide(own, facts(), version(None, "y1"))
    assert not decide(own, facts(), version("A", "y1", "z1"))
    assert not decide(own, facts(), version("A", "z1"))
    assert not decide(own, facts(), version("A"))


def test_a_version_shows_only_if_its_current_version_does() -> None:
    named = clinician(named=frozenset(Y.patients))
    earlier, later = version("A", "y1", v=1), version("A", "y1", labels=[PSY], v=2)
    assert decide(named, facts(y=NO_PSY), earlier, version("A", "y1", v=2))
    assert not decide(named, facts(y=NO_PSY), earlier, later)
    # Labelled first, then not: the current shows, the labelled version does not.
    assert decide(named, facts(y=NO_PSY), earlier)
    assert not decide(named, facts(y=NO_PSY), later, earlier)
    moved = version("A", "z1", v=2)
    assert not decide(named, facts(), earlier, moved)


def test_break_the_glass_overrides_for_the_declared_person_only() -> None:
    both = frozenset(Y.patients) | frozenset(Z.patients)
    emergency = clinician(named=both, purpose="ETREAT", emergency_for=frozenset(Y.patients))
    assert decide(emergency, facts(y=DENY, z=DENY), version("A", "y1"))
    assert not decide(emergency, facts(y=DENY, z=DENY), version("A", "z1"))
    standing = policy(
        {
            "type": "deny",
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT"}
            ],
        }
    )
    assert not decide(emergency, facts(y=standing), version("A", "y1"))
