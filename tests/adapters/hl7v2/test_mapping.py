"""Mappings checked on real fixture messages, and idempotency through the real hub."""

import base64
from typing import Any

import httpx
from support import FHIR_JSON, FIXTURES, FacilityClients, unique

from adapters.base import BHYT_SYSTEM, CCCD_SYSTEM, UCUM_SYSTEM, Facility, Rejection
from adapters.hl7v2 import parse

INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def fixture(name: str) -> str:
    return (FIXTURES / "hl7v2" / name).read_text(encoding="utf-8")


def bundle_of(text: str, facility: Facility | None = None) -> dict[str, Any]:
    """Return the one Bundle a message gives."""
    (output,) = parse(text, facility or Facility(unique("hl7-")), "test")
    assert not isinstance(output, Rejection), output
    return output


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def by_url(bundle: dict[str, Any], url: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == url)


async def post(client: httpx.AsyncClient, bundle: dict[str, Any]) -> None:
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert all(e["response"]["status"].startswith("2") for e in response.json()["entry"])


async def search(client: httpx.AsyncClient, resource_type: str, ident: dict[str, Any]) -> list[Any]:
    query = {"identifier": f"{ident['system']}|{ident['value']}"}
    response = await client.get(f"/fhir/{resource_type}", params=query)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def test_adt_a01_patient_and_encounter() -> None:
    facility = Facility(unique("hl7-"))
    bundle = bundle_of(fixture("ADT-A01-01.hl7"), facility)
    (org,) = resources(bundle, "Organization")
    org_url = bundle["entry"][0]["fullUrl"]
    assert org["identifier"][0]["value"] == facility.code
    (patient,) = resources(bundle, "Patient")
    assert patient["identifier"][0] == {
        "system": facility.system("mrn"),
        "value": "PATID1234",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
        },
    }
    assert patient["identifier"][1]["value"] == "123456789"  # SS, the second repetition
    assert patient["name"][0]["family"] == "EVERYMAN"
    assert patient["name"][0]["given"] == ["ADAM", "A"]
    assert patient["name"][1] == {"family": "Josh", "given": ["stanley"], "use": "official"}
    assert patient["birthDate"] == "1988-08-18"
    assert patient["gender"] == "male"
    assert patient["managingOrganization"] == {"reference": org_url}
    (encounter,) = resources(bundle, "Encounter")
    assert encounter["identifier"][0]["system"] == facility.system("visit")
    assert encounter["identifier"][0]["value"] == "40007716"  # PV1-19
    assert encounter["class"]["code"] == "PRENC"  # PV1-2 P: preadmit
    assert encounter["status"] == "in-progress"
    assert encounter["period"] == {"start": "2015-02-08T11:34:19+01:10"}  # PV1-44
    assert encounter["serviceProvider"] == {"reference": org_url}
    location = by_url(bundle, encounter["location"][0]["location"]["reference"])
    assert location["identifier"][0]["value"] == "HUH AE OMU/OMU B/Bed 03"
    attending = encounter["participant"][0]
    assert attending["type"][0]["coding"][0]["code"] == "ATND"
    doctor = by_url(bundle, attending["individual"]["reference"])
    assert doctor["identifier"][0] == {
        "system": facility.system("practitioner"),
        "value": "1122334",
    }
    assert doctor["name"][0]["family"] == "Alaz"
    put = next(e for e in bundle["entry"] if e["resource"] is patient)["request"]
    assert put == {"method": "PUT", "url": f"Patient?identifier={facility.system('mrn')}|PATID1234"}


def test_adt_a03_finishes_and_a11_cancels_the_encounter() -> None:
    assert resources(bundle_of(fixture("ADT-A03-01.hl7")), "Encounter")[0]["status"] == "finished"
    assert resources(bundle_of(fixture("ADT-A11-01.hl7")), "Encounter")[0]["status"] == "cancelled"


def test_citizen_id_goes_under_the_cccd_system() -> None:
    text = fixture("ADT-A01-01.hl7").replace("123456789^^^USSSA^SS", "079085001234^^^BCA^NI")
    (patient,) = resources(bundle_of(text), "Patient")
    assert {"system": CCCD_SYSTEM, "value": "079085001234"} == {
        k: patient["identifier"][1][k] for k in ("system", "value")
    }


VN_ADT = "\r".join(
    [
        "MSH|^~\\&|HIS|79001|EHRHUB|MOH|20261101083000||ADT^A01|MSG-1|P|2.5",
        "EVN|A01|20261101083000",
        "PID|1||BN0001^^^79001^MR~079085001234^^^BCA^NI~HN4790123456789^^^BHXH^HC||"
        "Nguyễn^Văn An||19850412|M",
        "PV1|1|I|Khoa Nội||||000123/BYT-CCHN^Trần^Thị Lan||||||||||||LK0001"
        "|||||||||||||||||||||||||20261101083000",
        "DG1|1||E11.9^Bệnh đái tháo đường type 2^I10||20261101090000|W|||||||||2",
        "DG1|2||I10^Tăng huyết áp vô căn^I10||20261101090000|F|||||||||1",
        "DG1|3||^^I10|Không mã",
    ]
)


def test_dg1_diagnoses_become_ranked_conditions_of_the_encounter() -> None:
    facility = Facility(unique("hl7-"))
    bundle = bundle_of(VN_ADT, facility)
    (encounter,) = resources(bundle, "Encounter")
    conditions = resources(bundle, "Condition")
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["E11.9", "I10"]
    assert {c["code"]["coding"][0]["system"] for c in conditions} == {
        "http://hl7.org/fhir/sid/icd-10"
    }
    assert [c["verificationStatus"]["coding"][0]["code"] for c in conditions] == [
        "provisional",
        "confirmed",
    ]
    assert conditions[1]["identifier"][0] == {
        "system": facility.system("condition"),  # as XML130 names a diagnosis
        "value": "LK0001.I10",
    }
    ranks = {by_url(bundle, d["condition"]["reference"])["code"]["coding"][0]["code"]: d["rank"]
             for d in encounter["diagnosis"]}  # fmt: skip
    assert ranks == {"E11.9": 2, "I10": 1}
    (url,) = [e["fullUrl"] for e in bundle["entry"] if e["resource"] is encounter]
    assert all(c["encounter"]["reference"] == url for c in conditions)


def test_insurance_card_goes_under_the_national_card_system() -> None:
    (patient,) = resources(bundle_of(VN_ADT), "Patient")
    systems = {i["system"]: i["value"] for i in patient["identifier"]}
    assert systems[BHYT_SYSTEM] == "HN4790123456789"
    assert systems[CCCD_SYSTEM] == "079085001234"


async def test_a_lab_result_never_overwrites_what_the_adt_feed_said(
    facility_client: FacilityClients,
) -> None:
    facility = Facility(unique("hl7-"))
    client = await facility_client(facility.code)
    discharge = VN_ADT.replace("ADT^A01", "ADT^A03").replace("|A01|", "|A03|")
    discharge = discharge.replace("20261101083000\rDG1", "20261101083000|20261105100000\rDG1", 1)
    await post(client, bundle_of(discharge, facility))
    thin = "\r".join(
        [
            "MSH|^~\\&|LIS|79001|EHRHUB|MOH|20261106100000||ORU^R01|MSG-3|P|2.5",
            "PID|1||BN0001^^^79001^MR",
            "PV1|1|I|||||000123/BYT-CCHN" + "|" * 12 + "LK0001",
            "OBR|1|CD9|XN9|2093-3^Cholesterol^LN",
            "OBX|1|NM|2093-3^Cholesterol^LN||5.5|mmol/L|3.9-5.2|H|||F",
        ]
    )
    await post(client, bundle_of(thin, facility))
    (patient,) = await search(client, "Patient", {"system": CCCD_SYSTEM, "value": "079085001234"})
    assert patient["name"][0]["family"] == "Nguyễn"
    visit = {"system": facility.system("visit"), "value": "LK0001"}
    (encounter,) = await search(client, "Encounter", visit)
    assert encounter["status"] == "finished"
    assert encounter["period"]["end"].startswith("2026-11-05T10:00:00")
    doctor = {"system": facility.system("practitioner"), "value": "000123/BYT-CCHN"}
    (practitioner,) = await search(client, "Practitioner", doctor)
    assert practitioner["name"][0]["family"] == "Trần"
    response = await client.get("/fhir/Observation", params={"subject": f"Patient/{patient['id']}"})
    (result,) = response.json()["entry"]
    assert result["resource"]["encounter"]["reference"] == f"Encounter/{encounter['id']}"


def test_vietnamese_reference_ranges_and_printed_units() -> None:
    text = "\r".join(
        [
            "MSH|^~\\&|LIS|79001|EHRHUB|MOH|20261101100000||ORU^R01|MSG-2|P|2.5",
            "PID|1||BN0001^^^79001^MR",
            "OBR|1|CD1|XN1|24331-1^Lipid panel^LN",
            "OBX|1|NM|2093-3^Cholesterol^LN||5,5|mmol/L^mmol/L^UCUM|3,9 - 5,2|H|||F",
            "OBX|2|NM|1742-6^ALT^LN||11|U/L|≤ 40|N|||F",
            "OBX|3|NM|6690-2^WBC^LN||7.2|10*9/L^G/L^UCUM|4 - 10|N|||F",
        ]
    )
    cholesterol, alt, wbc = resources(bundle_of(text), "Observation")
    assert cholesterol["referenceRange"][0]["low"]["value"] == 3.9
    assert cholesterol["referenceRange"][0]["high"]["value"] == 5.2
    assert cholesterol["referenceRange"][0]["text"] == "3,9 - 5,2"
    assert alt["referenceRange"][0]["high"]["value"] == 40
    assert "low" not in alt["referenceRange"][0]
    assert wbc["valueQuantity"] == {
        "value": 7.2,
        "unit": "G/L",
        "system": UCUM_SYSTEM,
        "code": "10*9/L",
    }


def test_oru_r01_values_units_ranges_and_flags() -> None:
    facility = Facility(unique("hl7-"))
    bundle = bundle_of(fixture("LRI_2.0-NG_CBC_Typ_Message.hl7"), facility)
    (report,) = resources(bundle, "DiagnosticReport")
    assert report["identifier"][0]["value"] == "R-991133"  # OBR-3 filler order number
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "57021-8",
        "display": "CBC W Auto Differential panel in Blood",
    }
    observations = resources(bundle, "Observation")
    assert len(report["result"]) == len(observations) > 10
    hemoglobin = observations[1]
    assert hemoglobin["code"]["coding"][0]["code"] == "718-7"
    assert hemoglobin["valueQuantity"] == {
        "value": 12.5,
        "unit": "grams per milliliter",  # OBX-6.2, as printed; the code is OBX-6.1
        "system": UCUM_SYSTEM,
        "code": "g/mL",
    }
    assert hemoglobin["referenceRange"][0]["low"]["value"] == 13
    assert hemoglobin["referenceRange"][0]["high"]["value"] == 18
    assert hemoglobin["interpretation"][0]["coding"] == [{"system": INTERPRETATION, "code": "L"}]
    assert observations[3]["interpretation"][0]["coding"][0]["code"] == "HH"
    assert hemoglobin["status"] == "final"
    assert hemoglobin["effectiveDateTime"] == "2011-01-03T14:34:28-08:00"
    assert hemoglobin["identifier"][0]["value"] == "R-991133-2-718-7"
    assert hemoglobin["performer"] == [{"reference": bundle["entry"][0]["fullUrl"]}]


def test_oru_r01_coded_and_string_values() -> None:
    bundle = bundle_of(fixture("ORU-R01-01.hl7"))
    observations = resources(bundle, "Observation")
    salmonella = next(o for o in observations if "valueCodeableConcept" in o)
    assert salmonella["valueCodeableConcept"]["coding"][0]["code"] == "27268008"
    assert salmonella["status"] == "preliminary"  # OBX-11 P


def test_vxu_immunization() -> None:
    facility = Facility(unique("hl7-"))
    bundle = bundle_of(fixture("VXU-V04-01.hl7"), facility)
    (immunization,) = resources(bundle, "Immunization")
    assert immunization["identifier"][0] == {
        "system": facility.system("immunization"),
        "value": "13696",  # ORC-3
    }
    assert immunization["status"] == "completed"
    assert immunization["vaccineCode"]["coding"][0]["code"] == "49281021588"
    assert immunization["occurrenceDateTime"] == "2021-08-18"
    assert immunization["lotNumber"] == "315841"
    assert immunization["doseQuantity"]["value"] == 0.5
    assert immunization["route"]["coding"][0]["code"] == "C28161"
    (patient,) = resources(bundle, "Patient")
    assert by_url(bundle, immunization["patient"]["reference"]) is patient


def test_several_rxa_of_one_order_are_each_an_immunization() -> None:
    text = fixture("VXU-V04-01.hl7")
    (rxa,) = [line for line in text.splitlines() if line.startswith("RXA")]
    second = rxa.replace("RXA|0|1|", "RXA|0|2|").replace("49281021588^TENIVAC", "90700^DTaP")
    bundle = bundle_of(text.replace(rxa, rxa + "\r" + second))
    first, other = resources(bundle, "Immunization")
    assert first["identifier"][0]["value"] == "13696"
    assert other["identifier"][0]["value"] == "13696-2"  # ORC-3 and RXA-2
    assert other["vaccineCode"]["coding"][0]["code"] == "90700"


def test_a_placeholder_pv1_makes_no_encounter() -> None:
    text = "\r".join(
        [
            "MSH|^~\\&|HIS|79001|EHRHUB|MOH|20261101083000||ADT^A28|MSG-9|P|2.5",
            "PID|1||BN0009^^^79001^MR||Lê^Thị Hoa||19900101|F",
            "PV1|1|N",
        ]
    )
    bundle = bundle_of(text)
    assert resources(bundle, "Encounter") == []
    assert len(resources(bundle, "Patient")) == 1


def test_a_patient_with_only_national_numbers_is_rejected_not_keyed_on_them() -> None:
    text = VN_ADT.replace("BN0001^^^79001^MR~", "")
    (output,) = parse(text, Facility(unique("hl7-")), "test")
    assert isinstance(output, Rejection)
    assert "PID-3 holds no number of the facility's own" in output.reason


def test_decimal_commas_and_lowercase_flags_are_read() -> None:
    text = "\r".join(
        [
            "MSH|^~\\&|LIS|79001|EHRHUB|MOH|20261101100000||ORU^R01|MSG-4|P|2.5",
            "PID|1||BN0001^^^79001^MR",
            "OBR|1|CD1|XN1|15074-8^Glucose^LN",
            "OBX|1|NM|15074-8^Glucose^LN||5,1|mmol/L|3,9 - 6,4|h|||F",
        ]
    )
    (glucose,) = resources(bundle_of(text), "Observation")
    assert glucose["valueQuantity"]["value"] == 5.1
    assert glucose["interpretation"][0]["coding"][0]["code"] == "H"


async def test_a40_links_the_merged_patients(facility_client: FacilityClients) -> None:
    facility = Facility(unique("hl7-"))
    client = await facility_client(facility.code)
    bundle = bundle_of(fixture("ADT-A40-01.hl7"), facility)
    survivor, prior = resources(bundle, "Patient")
    assert survivor["identifier"][0]["value"] == "12345"
    assert prior["identifier"][0]["value"] == "56789"
    assert survivor["link"][0]["type"] == "replaces"
    assert by_url(bundle, survivor["link"][0]["other"]["reference"]) is prior
    assert prior["link"][0]["type"] == "replaced-by" and prior["active"] is False
    await post(client, bundle)
    (stored,) = await search(client, "Patient", survivor["identifier"][0])
    (stored_prior,) = await search(client, "Patient", prior["identifier"][0])
    assert stored["link"][0]["other"]["reference"] == f"Patient/{stored_prior['id']}"
    assert stored_prior["link"][0]["other"]["reference"] == f"Patient/{stored['id']}"


async def test_sending_a_message_twice_keeps_one_copy(facility_client: FacilityClients) -> None:
    facility = Facility(unique("hl7-"))
    client = await facility_client(facility.code)
    for name in ("ADT-A01-01.hl7", "ORU-R01-01.hl7"):
        bundle = bundle_of(fixture(name), facility)
        await post(client, bundle)
        await post(client, bundle_of(fixture(name), facility))
        for kind in ("Patient", "Encounter", "Observation", "Organization"):
            for resource in resources(bundle, kind):
                found = await search(client, kind, resource["identifier"][0])
                assert len(found) == 1, (name, kind, resource["identifier"][0])


async def test_a08_with_a_changed_name_updates_the_patient(
    facility_client: FacilityClients,
) -> None:
    facility = Facility(unique("hl7-"))
    client = await facility_client(facility.code)
    text = fixture("ADT-A08-01.hl7")
    await post(client, bundle_of(text, facility))
    mrn = {"system": facility.system("mrn"), "value": "PATID1234"}
    (before,) = await search(client, "Patient", mrn)
    await post(client, bundle_of(text.replace("|EVERYMAN&&&&Aniston^", "|NGUYEN^"), facility))
    (after,) = await search(client, "Patient", mrn)
    assert after["id"] == before["id"]
    assert after["meta"]["versionId"] == "2"
    assert after["name"][0]["family"] == "NGUYEN"


async def test_a_messy_feed_lf_bom_escapes_and_repetitions(
    facility_client: FacilityClients,
) -> None:
    facility = Facility(unique("hl7-"))
    client = await facility_client(facility.code)
    crlf = fixture("ADT01-28.hl7").replace("\n", "\r\n")
    assert crlf.startswith("\ufeffMSH")
    # Two messages in one file, one with CRLF, one with LF and a BOM; escapes in PID-5.
    escaped = fixture("ADT-A04-01.hl7").replace("|EVERYMAN&&&&Aniston^", "|O\\T\\Brien^")
    outputs = list(parse(crlf + "\n" + escaped, facility, "feed.hl7"))
    assert len(outputs) == 2
    first, second = outputs
    assert not isinstance(first, Rejection) and not isinstance(second, Rejection)
    assert resources(first, "Patient")[0]["identifier"][0]["value"] == "PATID1234"
    (patient,) = resources(second, "Patient")
    assert patient["name"][0]["family"] == "O&Brien"
    assert len(patient["name"]) == 2  # PID-5 repeats
    assert len(patient["identifier"]) == 2  # PID-3 repeats
    for bundle in outputs:
        await post(client, bundle)


def test_mdm_text_becomes_a_base64_attachment() -> None:
    text = (
        fixture("MDM-T02-01.hl7") + "OBX|3|TX|11492-6^History^LN||Line one\\.br\\Line two||||||F\n"
    )
    (document,) = resources(bundle_of(text), "DocumentReference")
    (attachment,) = [c["attachment"] for c in document["content"] if "data" in c["attachment"]]
    assert attachment["contentType"] == "text/plain"
    assert base64.b64decode(attachment["data"]).decode() == "Line one\nLine two"


def test_unmapped_and_broken_messages_are_rejected_not_raised() -> None:
    facility = Facility(unique("hl7-"))
    (orm,) = parse(fixture("ORM-O01-01.hl7"), facility, "orders.hl7")
    assert isinstance(orm, Rejection)
    assert orm.reason.startswith("ORM^O01 is not mapped; ")
    assert "orders.hl7 message 1" in orm.source
    broken = "MSH|^~\\&|A|B\nPID|1||\nGARBAGE LINE\n"
    (unreadable,) = parse(broken, facility, "bad.hl7")
    assert isinstance(unreadable, Rejection)
    assert unreadable.reason == "cannot parse: segment 3 is not an HL7 segment: 'GARBAGE LINE'"
    (headless,) = parse("\ufeffPID|1||X\n", facility, "bad.hl7")
    assert isinstance(headless, Rejection) and "must start with an MSH" in headless.reason
    no_pid = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\nEVN|A01\n"
    (rejection,) = parse(no_pid, facility)
    assert isinstance(rejection, Rejection) and "no PID" in rejection.reason
    no_id = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X2|P|2.5\nPID|1||||Nguyen^An\n"
    (rejection,) = parse(no_id, facility)
    assert isinstance(rejection, Rejection) and "PID-3" in rejection.reason
