"""The Indonesia pack's profiles, rule by rule: its valid records and one case per rule, which
test_rules.py runs. The same validator reads a second country's pack, which is data only
(NIK, SATUSEHAT's identifier systems)."""

from fhir_profiles.pack import load
from fhir_profiles.validator import Validator
from tests.profiles.records import (
    ICD10,
    IHS,
    NIK,
    append,
    drop,
    id_condition,
    id_encounter,
    id_patient,
    invariant,
    missing,
    put,
    required,
    too_many,
    uncoded,
    wrong,
)

RECORDS = (id_patient, id_encounter, id_condition)
PAT = "id-patient/Patient."
ENC = "id-encounter/Encounter."
CON = "id-condition/Condition."

CASES = (
    # Patient: one NIK, the SATUSEHAT number when known, demographics.
    required(
        f"{PAT}identifier/min",
        id_patient,
        drop("identifier"),
        "Patient.identifier",
        also=(f"{PAT}identifier:nik/min",),
    ),
    required(f"{PAT}identifier:nik/min", id_patient, drop("identifier", 0), "Patient.identifier"),
    too_many(
        f"{PAT}identifier:nik/max",
        id_patient,
        append("identifier", value={"system": NIK, "value": "3204110512890002"}),
        "Patient.identifier",
    ),
    required(
        f"{PAT}identifier:nik.system/fixed",
        id_patient,
        put("identifier", 0, "system", value="https://fhir.kemkes.go.id/id/kk"),
        "Patient.identifier",
        rule=f"{PAT}identifier:nik/min",
    ),
    required(
        f"{PAT}identifier:nik.value/min",
        id_patient,
        drop("identifier", 0, "value"),
        "Patient.identifier[0].value",
    ),
    missing(
        f"{PAT}identifier:ihs/must-support", id_patient, drop("identifier", 1), "Patient.identifier"
    ),
    too_many(
        f"{PAT}identifier:ihs/max",
        id_patient,
        append("identifier", value={"system": IHS, "value": "P00000000001"}),
        "Patient.identifier",
    ),
    missing(
        f"{PAT}identifier:ihs.system/fixed",
        id_patient,
        put("identifier", 1, "system", value="https://fhir.kemkes.go.id/id/bpjs"),
        "Patient.identifier",
        rule=f"{PAT}identifier:ihs/must-support",
    ),
    required(
        f"{PAT}identifier:ihs.value/min",
        id_patient,
        drop("identifier", 1, "value"),
        "Patient.identifier[1].value",
    ),
    required(f"{PAT}name/min", id_patient, drop("name"), "Patient.name"),
    required(f"{PAT}gender/min", id_patient, drop("gender"), "Patient.gender"),
    required(f"{PAT}birthDate/min", id_patient, drop("birthDate"), "Patient.birthDate"),
    missing(f"{PAT}address/must-support", id_patient, drop("address"), "Patient.address"),
    wrong("id-nik/nik", id_patient, put("gender", value="female"), "Patient.gender"),
    # Encounter
    required(f"{ENC}identifier/min", id_encounter, drop("identifier"), "Encounter.identifier"),
    required(
        f"{ENC}identifier.system/min",
        id_encounter,
        drop("identifier", 0, "system"),
        "Encounter.identifier[0].system",
    ),
    required(
        f"{ENC}identifier.value/min",
        id_encounter,
        drop("identifier", 0, "value"),
        "Encounter.identifier[0].value",
    ),
    uncoded(
        f"{ENC}class/binding", id_encounter, put("class", "code", value="XYZ"), "Encounter.class"
    ),
    required(f"{ENC}subject/min", id_encounter, drop("subject"), "Encounter.subject"),
    required(f"{ENC}period/min", id_encounter, drop("period"), "Encounter.period"),
    required(
        f"{ENC}period.start/min", id_encounter, drop("period", "start"), "Encounter.period.start"
    ),
    invariant(
        "id-enc-1",
        id_encounter,
        put("period", "end", value="2024-01-14T09:00:00+07:00"),
        "Encounter.period",
    ),
    required(
        f"{ENC}serviceProvider/min",
        id_encounter,
        drop("serviceProvider"),
        "Encounter.serviceProvider",
    ),
    # Condition: one ICD-10 code, in a visit.
    required(f"{CON}code/min", id_condition, drop("code"), "Condition.code"),
    required(
        f"{CON}code.coding:icd10/min",
        id_condition,
        put("code", "coding", 0, "system", value="http://snomed.info/sct"),
        "Condition.code.coding",
    ),
    too_many(
        f"{CON}code.coding:icd10/max",
        id_condition,
        append("code", "coding", value={"system": ICD10, "code": "E11.9"}),
        "Condition.code.coding",
    ),
    required(
        f"{CON}code.coding:icd10.system/fixed",
        id_condition,
        put("code", "coding", 0, "system", value="http://hl7.org/fhir/sid/icd-10-cm"),
        "Condition.code.coding",
        rule=f"{CON}code.coding:icd10/min",
    ),
    required(
        f"{CON}code.coding:icd10.code/min",
        id_condition,
        drop("code", "coding", 0, "code"),
        "Condition.code.coding[0].code",
    ),
    uncoded(
        f"{CON}code.coding:icd10.code/binding",
        id_condition,
        put("code", "coding", 0, "code", value="123"),
        "Condition.code.coding[0].code",
    ),
    required(f"{CON}encounter/min", id_condition, drop("encounter"), "Condition.encounter"),
)
# The NIK's birth date, and its form, beyond the one case per rule.
MORE = (
    wrong("id-nik/nik", id_patient, put("birthDate", value="1989-12-06"), "Patient.birthDate"),
    wrong(
        "id-nik/nik",
        id_patient,
        put("identifier", 0, "value", value="320411051289"),
        "Patient.identifier[0].value",
    ),
)


def test_the_pack_is_data_the_same_validator_reads() -> None:
    vietnam, indonesia = Validator(load("vn")), Validator(load("id"))
    patient = id_patient()
    assert indonesia.validate(patient) == []
    assert {i.rule for i in vietnam.validate(patient)} >= {"vn-patient/Patient.identifier:cccd/min"}
