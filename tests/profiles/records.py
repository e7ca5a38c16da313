"""Valid sample records of every profile of the Vietnam and Indonesia packs, the mutations
that break one rule each, and the rules a pack declares (what the rule tables must cover)."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir_profiles.pack import Pack
from fhir_profiles.validator import Validator
from hub.fhir.models import get_fhir_model_class

Resource = dict[str, Any]

CHECK_EXTENSION = "https://ehrhub.org/fhir/StructureDefinition/identifier-check"
CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
BHYT = "https://moh.gov.vn/fhir/sid/bhyt"
FACILITY = "https://moh.gov.vn/fhir/sid/facility"
NIK = "https://fhir.kemkes.go.id/id/nik"
IHS = "https://fhir.kemkes.go.id/id/ihs-number"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONDITION = "http://terminology.hl7.org/CodeSystem/condition-"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PATIENT = {"reference": "Patient/p1"}
VISIT = {"reference": "Encounter/e1"}
FACILITY_REF = {"reference": "Organization/o1"}


def typed(system: str, value: str, code: str) -> Resource:
    """Return an Identifier typed with a v2-0203 code."""
    return {
        "system": system,
        "value": value,
        "type": {"coding": [{"system": ID_TYPE, "code": code}]},
    }


def coding(system: str, code: str, display: str = "") -> Resource:
    """Return a CodeableConcept of one coding."""
    found = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [found]}


# Vietnam


def vn_patient() -> Resource:
    """Return a man born in 1985 in Hà Nội, with his citizen ID and insurance card."""
    return {
        "resourceType": "Patient",
        "identifier": [
            typed(CCCD, "001085012345", "NI"),
            typed(BHYT, "DN4010123456789", "SN"),
        ],
        "name": [{"use": "official", "family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1985-04-12",
        "address": [{"city": "Hà Nội", "country": "VN"}],
    }


def vn_encounter() -> Resource:
    """Return a finished ambulatory visit to facility 79001."""
    return {
        "resourceType": "Encounter",
        "identifier": [
            {"system": "https://moh.gov.vn/fhir/sid/visit/79001", "value": "79001LK2401150001"}
        ],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": PATIENT,
        "period": {"start": "2024-01-15T08:00:00+07:00", "end": "2024-01-15T10:30:00+07:00"},
        "serviceProvider": FACILITY_REF,
    }


def vn_condition() -> Resource:
    """Return an encounter diagnosis of hypertension in ICD-10."""
    return {
        "resourceType": "Condition",
        "clinicalStatus": coding(f"{CONDITION}clinical", "active"),
        "code": coding(ICD10, "I10", "Tăng huyết áp"),
        "subject": PATIENT,
        "encounter": VISIT,
        "onsetDateTime": "2023-06-01",
        "recordedDate": "2024-01-15T09:00:00+07:00",
    }


def vn_observation() -> Resource:
    """Return a heart rate (a vital sign) in LOINC and UCUM."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [coding(OBSERVATION_CATEGORY, "vital-signs")],
        "code": coding(LOINC, "8867-4", "Heart rate"),
        "subject": PATIENT,
        "encounter": VISIT,
        "effectiveDateTime": "2024-01-15T08:10:00+07:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": UCUM, "code": "/min"},
    }


def vn_lab_observation() -> Resource:
    """Return a serum glucose (a laboratory result) in LOINC and UCUM."""
    return vn_observation() | {
        "category": [coding(OBSERVATION_CATEGORY, "laboratory")],
        "code": coding(LOINC, "2345-7", "Glucose [Mass/volume] in Serum or Plasma"),
        "valueQuantity": {"value": 104, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    }


def vn_medication_request() -> Resource:
    """Return a prescription of amlodipine with its dosage and prescriber."""
    return {
        "resourceType": "MedicationRequest",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Amlodipin 5 mg"},
        "subject": PATIENT,
        "encounter": VISIT,
        "authoredOn": "2024-01-15T09:30:00+07:00",
        "requester": {"reference": "Practitioner/d1"},
        "dosageInstruction": [{"text": "1 viên/ngày, uống buổi sáng"}],
    }


def vn_procedure() -> Resource:
    """Return an ECG recorded during the visit."""
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"text": "Điện tim thường"},
        "subject": PATIENT,
        "encounter": VISIT,
        "performedDateTime": "2024-01-15T08:40:00+07:00",
    }


def vn_organization() -> Resource:
    """Return facility 79001, a provincial hospital of Hồ Chí Minh City."""
    return {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY, "value": "79001"}],
        "active": True,
        "type": [coding("http://terminology.hl7.org/CodeSystem/organization-type", "prov")],
        "name": "Bệnh viện Đa khoa Mô phỏng TP Hồ Chí Minh số 1",
        "address": [{"city": "TP Hồ Chí Minh", "country": "VN"}],
    }


def vn_coverage() -> Resource:
    """Return the health-insurance card of the sample patient."""
    return {
        "resourceType": "Coverage",
        "identifier": [typed(BHYT, "DN4010123456789", "SN")],
        "status": "active",
        "subscriberId": "DN4010123456789",
        "beneficiary": PATIENT,
        "period": {"start": "2024-01-01", "end": "2024-12-31"},
        "payor": [{"display": "Bảo hiểm xã hội Việt Nam"}],
    }


def vn_consent() -> Resource:
    """Return a patient-privacy Consent as the demo writes one: every facility may treat."""
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [coding(LOINC, "59284-0")],
        "patient": PATIENT,
        "dateTime": "2024-01-15",
        "provision": {
            "type": "permit",
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}
            ],
        },
    }


# Indonesia


def id_patient() -> Resource:
    """Return a man born on 5 December 1989, with his NIK and SATUSEHAT number."""
    return {
        "resourceType": "Patient",
        "identifier": [
            typed(NIK, "3204110512890001", "NI"),
            {"system": IHS, "value": "P02478375538"},
        ],
        "name": [{"use": "official", "text": "Budi Santoso"}],
        "gender": "male",
        "birthDate": "1989-12-05",
        "address": [{"city": "Bandung", "country": "ID"}],
    }


def id_encounter() -> Resource:
    """Return a finished ambulatory visit, identified under its organization's system."""
    return {
        "resourceType": "Encounter",
        "identifier": [{"system": "http://sys-ids.kemkes.go.id/encounter/10000004", "value": "V1"}],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": PATIENT,
        "period": {"start": "2024-01-15T08:00:00+07:00", "end": "2024-01-15T09:00:00+07:00"},
        "serviceProvider": FACILITY_REF,
    }


def id_condition() -> Resource:
    """Return an encounter diagnosis of hypertension in ICD-10."""
    return {
        "resourceType": "Condition",
        "clinicalStatus": coding(f"{CONDITION}clinical", "active"),
        "code": coding(ICD10, "I10", "Essential (primary) hypertension"),
        "subject": PATIENT,
        "encounter": VISIT,
    }


# Mutations


def drop(*path: str | int) -> Callable[[Resource], None]:
    """Return a mutation removing the element at a path (`"identifier", 0, "value"`)."""

    def mutate(resource: Resource) -> None:
        parent: Any = resource
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]

    return mutate


def put(*path: str | int, value: Any) -> Callable[[Resource], None]:
    """Return a mutation setting the element at a path."""

    def mutate(resource: Resource) -> None:
        parent: Any = resource
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value

    return mutate


def append(*path: str | int, value: Any) -> Callable[[Resource], None]:
    """Return a mutation adding an item to the list at a path."""

    def mutate(resource: Resource) -> None:
        parent: Any = resource
        for step in path:
            parent = parent[step]
        parent.append(value)

    return mutate


@dataclass(frozen=True)
class Case:
    """One rule of a pack (`covers`), a valid record, a mutation breaking that rule alone, and
    the issue expected. The issue's rule is the covered one, except for a slice's
    discriminating child (`identifier:cccd.system`): breaking it takes the item out of its
    slice, so the slice's own rule speaks. `also`: rules bound to speak too (an element
    required by its slice as well as by itself)."""

    covers: str
    record: Callable[[], Resource]
    mutate: Callable[[Resource], None]
    severity: str
    code: str
    path: str
    rule: str = ""
    also: tuple[str, ...] = ()

    @property
    def expected_rule(self) -> str:
        return self.rule or self.covers

    def broken(self) -> Resource:
        """Return the record with the rule broken."""
        resource = self.record()
        self.mutate(resource)
        return resource


def rules_in(pack: Pack) -> Iterator[str]:
    """Yield every rule a pack's StructureDefinitions and NamingSystems declare, named as the
    validator names them (`<profile>/<element>/<check>`, a constraint's key,
    `<NamingSystem>/<check>`). Must-support counts only where the element may be absent."""
    for profile in pack.profiles.values():
        for element in profile["differential"]["element"]:
            prefix = f"{profile['id']}/{element['id']}"
            if element.get("min", 0) > 0:
                yield f"{prefix}/min"
            if element.get("max", "*") != "*":
                yield f"{prefix}/max"
            for check in ("fixed", "pattern"):
                if any(key.startswith(check) for key in element):
                    yield f"{prefix}/{check}"
            if "binding" in element:
                yield f"{prefix}/binding"
            if "type" in element:
                yield f"{prefix}/type"
            if element.get("mustSupport") and element.get("min", 0) == 0:
                yield f"{prefix}/must-support"
            yield from (constraint["key"] for constraint in element.get("constraint", []))
    for naming in pack.naming_systems.values():
        for extension in naming.get("extension", []):
            if extension.get("url") == CHECK_EXTENSION:
                yield f"{naming['id']}/{extension['valueCode']}"


def required(
    covers: str,
    record: Callable[[], Resource],
    mutate: Callable[[Resource], None],
    path: str,
    rule: str = "",
    also: tuple[str, ...] = (),
) -> Case:
    """Return the case of a required element or slice left out."""
    return Case(covers, record, mutate, "error", "required", path, rule, also)


def too_many(
    covers: str, record: Callable[[], Resource], mutate: Callable[[Resource], None], path: str
) -> Case:
    """Return the case of an element or slice repeated beyond its max."""
    return Case(covers, record, mutate, "error", "structure", path)


def wrong(
    covers: str,
    record: Callable[[], Resource],
    mutate: Callable[[Resource], None],
    path: str,
    rule: str = "",
) -> Case:
    """Return the case of a value that is not the fixed or pattern value, or an identifier
    that disagrees with itself or its holder."""
    return Case(covers, record, mutate, "error", "value", path, rule)


def uncoded(
    covers: str,
    record: Callable[[], Resource],
    mutate: Callable[[Resource], None],
    path: str,
    severity: str = "error",
) -> Case:
    """Return the case of a code outside its bound value set."""
    return Case(covers, record, mutate, severity, "code-invalid", path)


def invariant(
    covers: str,
    record: Callable[[], Resource],
    mutate: Callable[[Resource], None],
    path: str,
    also: tuple[str, ...] = (),
) -> Case:
    """Return the case of a FHIRPath invariant broken."""
    return Case(covers, record, mutate, "error", "invariant", path, also=also)


def missing(
    covers: str,
    record: Callable[[], Resource],
    mutate: Callable[[Resource], None],
    path: str,
    rule: str = "",
) -> Case:
    """Return the case of a must-support element left out."""
    return Case(covers, record, mutate, "information", "incomplete", path, rule)


def assert_round_trip(validator: Validator, resource: Resource) -> None:
    """Assert a valid record survives fhir.resources unchanged and has no finding."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    again = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    assert again == resource
    assert validator.validate(again) == []


def assert_case(validator: Validator, case: Case) -> None:
    """Assert that breaking one rule gives its issue at its path, and nothing else but
    must-support gaps and the rules the case names as going along."""
    issues = validator.validate(case.broken())
    found = [(i.severity, i.code, i.rule, i.path) for i in issues]
    assert (case.severity, case.code, case.expected_rule, case.path) in found, issues
    others = {i.rule for i in issues if i.severity != "information"}
    assert others - {case.expected_rule, *case.also} == set(), issues
    assert all(i.message for i in issues)


def assert_every_rule_has_a_case(pack: Pack, cases: tuple[Case, ...]) -> None:
    """Assert the table of cases covers exactly the rules the pack declares."""
    declared = set(rules_in(pack))
    tested = {case.covers for case in cases}
    assert declared - tested == set(), "rules without a case"
    assert tested - declared == set(), "cases of rules the pack no longer has"
