"""The Vietnam pack's profiles, rule by rule: its valid records and one case per rule, which
test_rules.py runs; and the cases particular to Vietnam (time zones, dengue)."""

import pytest

from fhir_profiles.pack import load
from fhir_profiles.validator import Validator
from tests.profiles.records import (
    BHYT,
    CCCD,
    FACILITY,
    ICD10,
    append,
    drop,
    invariant,
    missing,
    put,
    required,
    too_many,
    typed,
    uncoded,
    vn_condition,
    vn_consent,
    vn_coverage,
    vn_encounter,
    vn_lab_observation,
    vn_medication_request,
    vn_observation,
    vn_organization,
    vn_patient,
    vn_procedure,
    wrong,
)

RECORDS = (
    vn_patient,
    vn_encounter,
    vn_condition,
    vn_observation,
    vn_lab_observation,
    vn_medication_request,
    vn_procedure,
    vn_organization,
    vn_coverage,
    vn_consent,
)
PAT = "vn-patient/Patient."
ENC = "vn-encounter/Encounter."
CON = "vn-condition/Condition."
OBS = "vn-observation/Observation."
MED = "vn-medicationrequest/MedicationRequest."
PRO = "vn-procedure/Procedure."
ORG = "vn-organization/Organization."
COV = "vn-coverage/Coverage."
CNS = "vn-consent/Consent."

CASES = (
    # Patient: one citizen ID, insurance cards, demographics.
    required(
        f"{PAT}identifier/min",
        vn_patient,
        drop("identifier"),
        "Patient.identifier",
        also=(f"{PAT}identifier:cccd/min",),
    ),
    required(f"{PAT}identifier:cccd/min", vn_patient, drop("identifier", 0), "Patient.identifier"),
    too_many(
        f"{PAT}identifier:cccd/max",
        vn_patient,
        append("identifier", value={"system": CCCD, "value": "001085099999"}),
        "Patient.identifier",
    ),
    required(
        f"{PAT}identifier:cccd.system/min",
        vn_patient,
        drop("identifier", 0, "system"),
        "Patient.identifier",
        rule=f"{PAT}identifier:cccd/min",
    ),
    required(
        f"{PAT}identifier:cccd.system/fixed",
        vn_patient,
        put("identifier", 0, "system", value="http://example.org/cccd"),
        "Patient.identifier",
        rule=f"{PAT}identifier:cccd/min",
    ),
    required(
        f"{PAT}identifier:cccd.value/min",
        vn_patient,
        drop("identifier", 0, "value"),
        "Patient.identifier[0].value",
    ),
    missing(
        f"{PAT}identifier:bhyt/must-support",
        vn_patient,
        drop("identifier", 1),
        "Patient.identifier",
    ),
    missing(
        f"{PAT}identifier:bhyt.system/min",
        vn_patient,
        drop("identifier", 1, "system"),
        "Patient.identifier",
        rule=f"{PAT}identifier:bhyt/must-support",
    ),
    missing(
        f"{PAT}identifier:bhyt.system/fixed",
        vn_patient,
        put("identifier", 1, "system", value="http://example.org/bhyt"),
        "Patient.identifier",
        rule=f"{PAT}identifier:bhyt/must-support",
    ),
    required(
        f"{PAT}identifier:bhyt.value/min",
        vn_patient,
        drop("identifier", 1, "value"),
        "Patient.identifier[1].value",
    ),
    required(f"{PAT}name/min", vn_patient, drop("name"), "Patient.name"),
    required(f"{PAT}gender/min", vn_patient, drop("gender"), "Patient.gender"),
    required(f"{PAT}birthDate/min", vn_patient, drop("birthDate"), "Patient.birthDate"),
    missing(f"{PAT}address/must-support", vn_patient, drop("address"), "Patient.address"),
    wrong("vn-cccd/citizen-id", vn_patient, put("gender", value="female"), "Patient.gender"),
    wrong(
        "vn-bhyt/insurance-card",
        vn_patient,
        put("identifier", 1, "value", value="DN6010123456789"),
        "Patient.identifier[1].value",
    ),
    # Encounter: the visit identifier, class, patient, facility, period.
    required(f"{ENC}identifier/min", vn_encounter, drop("identifier"), "Encounter.identifier"),
    required(
        f"{ENC}identifier.system/min",
        vn_encounter,
        drop("identifier", 0, "system"),
        "Encounter.identifier[0].system",
    ),
    required(
        f"{ENC}identifier.value/min",
        vn_encounter,
        drop("identifier", 0, "value"),
        "Encounter.identifier[0].value",
    ),
    uncoded(
        f"{ENC}class/binding", vn_encounter, put("class", "code", value="XYZ"), "Encounter.class"
    ),
    required(f"{ENC}subject/min", vn_encounter, drop("subject"), "Encounter.subject"),
    required(f"{ENC}period/min", vn_encounter, drop("period"), "Encounter.period"),
    required(
        f"{ENC}period.start/min", vn_encounter, drop("period", "start"), "Encounter.period.start"
    ),
    invariant(
        "vn-enc-1",
        vn_encounter,
        put("period", "end", value="2024-01-15T07:00:00+07:00"),
        "Encounter.period",
    ),
    required(
        f"{ENC}serviceProvider/min",
        vn_encounter,
        drop("serviceProvider"),
        "Encounter.serviceProvider",
    ),
    # Condition: one ICD-10 code.
    missing(
        f"{CON}clinicalStatus/must-support",
        vn_condition,
        drop("clinicalStatus"),
        "Condition.clinicalStatus",
    ),
    required(f"{CON}code/min", vn_condition, drop("code"), "Condition.code"),
    required(
        f"{CON}code.coding:icd10/min",
        vn_condition,
        put(
            "code",
            "coding",
            value=[{"system": "https://moh.gov.vn/fhir/CodeSystem/local", "code": "THA"}],
        ),
        "Condition.code.coding",
    ),
    too_many(
        f"{CON}code.coding:icd10/max",
        vn_condition,
        append("code", "coding", value={"system": ICD10, "code": "E11.9"}),
        "Condition.code.coding",
    ),
    required(
        f"{CON}code.coding:icd10.system/fixed",
        vn_condition,
        put("code", "coding", 0, "system", value="http://hl7.org/fhir/sid/icd-10-cm"),
        "Condition.code.coding",
        rule=f"{CON}code.coding:icd10/min",
    ),
    required(
        f"{CON}code.coding:icd10.code/min",
        vn_condition,
        drop("code", "coding", 0, "code"),
        "Condition.code.coding[0].code",
    ),
    uncoded(
        f"{CON}code.coding:icd10.code/binding",
        vn_condition,
        put("code", "coding", 0, "code", value="123"),
        "Condition.code.coding[0].code",
    ),
    missing(f"{CON}encounter/must-support", vn_condition, drop("encounter"), "Condition.encounter"),
    missing(
        f"{CON}onset[x]/must-support", vn_condition, drop("onsetDateTime"), "Condition.onset[x]"
    ),
    missing(
        f"{CON}recordedDate/must-support",
        vn_condition,
        drop("recordedDate"),
        "Condition.recordedDate",
    ),
    # Observation: LOINC for lab results and vital signs, UCUM for quantities.
    invariant(
        "vn-obs-1",
        vn_lab_observation,
        put(
            "code",
            value={
                "coding": [
                    {"system": "https://moh.gov.vn/fhir/CodeSystem/ma-chi-so", "code": "GLU"}
                ]
            },
        ),
        "Observation",
        also=(f"{OBS}code/binding",),
    ),
    uncoded(
        f"{OBS}code/binding",
        vn_observation,
        put("code", "coding", 0, "code", value="8867-5"),
        "Observation.code",
        severity="warning",
    ),
    required(f"{OBS}subject/min", vn_observation, drop("subject"), "Observation.subject"),
    required(
        f"{OBS}effective[x]/min",
        vn_observation,
        drop("effectiveDateTime"),
        "Observation.effective[x]",
    ),
    required(
        f"{OBS}valueQuantity.system/min",
        vn_observation,
        drop("valueQuantity", "system"),
        "Observation.valueQuantity.system",
    ),
    wrong(
        f"{OBS}valueQuantity.system/fixed",
        vn_observation,
        put("valueQuantity", "system", value="http://example.org/units"),
        "Observation.valueQuantity.system",
    ),
    required(
        f"{OBS}valueQuantity.code/min",
        vn_observation,
        drop("valueQuantity", "code"),
        "Observation.valueQuantity.code",
    ),
    uncoded(
        f"{OBS}valueQuantity.code/binding",
        vn_observation,
        put("valueQuantity", "code", value="lần/phút"),
        "Observation.valueQuantity.code",
    ),
    # MedicationRequest
    required(
        f"{MED}subject/min", vn_medication_request, drop("subject"), "MedicationRequest.subject"
    ),
    missing(
        f"{MED}encounter/must-support",
        vn_medication_request,
        drop("encounter"),
        "MedicationRequest.encounter",
    ),
    required(
        f"{MED}authoredOn/min",
        vn_medication_request,
        drop("authoredOn"),
        "MedicationRequest.authoredOn",
    ),
    missing(
        f"{MED}requester/must-support",
        vn_medication_request,
        drop("requester"),
        "MedicationRequest.requester",
    ),
    missing(
        f"{MED}dosageInstruction/must-support",
        vn_medication_request,
        drop("dosageInstruction"),
        "MedicationRequest.dosageInstruction",
    ),
    # Procedure
    required(f"{PRO}code/min", vn_procedure, drop("code"), "Procedure.code"),
    required(f"{PRO}subject/min", vn_procedure, drop("subject"), "Procedure.subject"),
    required(
        f"{PRO}performed[x]/min", vn_procedure, drop("performedDateTime"), "Procedure.performed[x]"
    ),
    # Organization: the facility code.
    required(
        f"{ORG}identifier:facility/min",
        vn_organization,
        drop("identifier"),
        "Organization.identifier",
    ),
    too_many(
        f"{ORG}identifier:facility/max",
        vn_organization,
        append("identifier", value={"system": FACILITY, "value": "79002"}),
        "Organization.identifier",
    ),
    required(
        f"{ORG}identifier:facility.system/fixed",
        vn_organization,
        put("identifier", 0, "system", value="https://moh.gov.vn/fhir/sid/cskcb"),
        "Organization.identifier",
        rule=f"{ORG}identifier:facility/min",
    ),
    required(
        f"{ORG}identifier:facility.value/min",
        vn_organization,
        drop("identifier", 0, "value"),
        "Organization.identifier[0].value",
    ),
    invariant(
        "vn-org-1",
        vn_organization,
        put("identifier", 0, "value", value="79-001"),
        "Organization.identifier[0].value",
    ),
    missing(f"{ORG}type/must-support", vn_organization, drop("type"), "Organization.type"),
    required(f"{ORG}name/min", vn_organization, drop("name"), "Organization.name"),
    missing(f"{ORG}address/must-support", vn_organization, drop("address"), "Organization.address"),
    # Coverage: one insurance card.
    required(f"{COV}identifier:bhyt/min", vn_coverage, drop("identifier"), "Coverage.identifier"),
    too_many(
        f"{COV}identifier:bhyt/max",
        vn_coverage,
        append("identifier", value=typed(BHYT, "0123456789", "SN")),
        "Coverage.identifier",
    ),
    required(
        f"{COV}identifier:bhyt.system/fixed",
        vn_coverage,
        put("identifier", 0, "system", value="https://moh.gov.vn/fhir/sid/bhxh"),
        "Coverage.identifier",
        rule=f"{COV}identifier:bhyt/min",
    ),
    required(
        f"{COV}identifier:bhyt.value/min",
        vn_coverage,
        drop("identifier", 0, "value"),
        "Coverage.identifier[0].value",
    ),
    missing(f"{COV}period/must-support", vn_coverage, drop("period"), "Coverage.period"),
    # Consent: a patient-privacy consent, as the demo writes.
    wrong(
        f"{CNS}scope/pattern",
        vn_consent,
        put("scope", "coding", 0, "code", value="research"),
        "Consent.scope",
    ),
    wrong(
        f"{CNS}category/pattern",
        vn_consent,
        put("category", 0, "coding", 0, "code", value="57016-8"),
        "Consent.category[0]",
    ),
    required(f"{CNS}patient/min", vn_consent, drop("patient"), "Consent.patient"),
    required(f"{CNS}dateTime/min", vn_consent, drop("dateTime"), "Consent.dateTime"),
    missing(f"{CNS}provision/must-support", vn_consent, drop("provision"), "Consent.provision"),
)
# Identifier checks beyond the one case per rule: each disagreement names its element.
MORE = (
    wrong(
        "vn-cccd/citizen-id", vn_patient, put("birthDate", value="1986-04-12"), "Patient.birthDate"
    ),
    wrong(
        "vn-cccd/citizen-id",
        vn_patient,
        put("identifier", 0, "value", value="00108501234"),
        "Patient.identifier[0].value",
    ),
    wrong(
        "vn-bhyt/insurance-card",
        vn_coverage,
        put("identifier", 0, "value", value="12345"),
        "Coverage.identifier[0].value",
    ),
)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load("vn"))


def test_a_visit_may_end_in_another_time_zone_after_it_began(validator: Validator) -> None:
    encounter = vn_encounter()
    encounter["period"]["end"] = "2024-01-15T02:00:00Z"  # 09:00 in Vietnam, after 08:00
    assert validator.validate(encounter) == []
    encounter["period"]["end"] = "2024-01-15T00:30:00Z"  # 07:30 in Vietnam, before 08:00
    assert [i.rule for i in validator.validate(encounter)] == ["vn-enc-1"]


def test_dengue_is_coded_as_the_national_list_codes_it(validator: Validator) -> None:
    """WHO's 2019 update moved dengue to A97; the Ministry's list and the claims keep A90 and
    A91, which the vn pack's ICD-10 value set adds."""
    for code, rules in (("A91", []), ("A90", []), ("A97.0", []), ("A91.9", ["binding"])):
        condition = vn_condition()
        condition["code"]["coding"][0]["code"] = code
        found = [i.rule.rsplit("/", 1)[-1] for i in validator.validate(condition)]
        assert found == rules, code
