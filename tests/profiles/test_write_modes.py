"""The national profiles on write: lenient keeps a record and its findings, strict refuses it,
off checks nothing; the base model is enforced in every mode. And what is kept: each record's
findings, and the counts per facility and rule at /quality."""

import json
import random
from typing import Any

import httpx

from tests.profiles.records import id_patient
from tests.profiles.test_rules_vn import RECORDS as VN_RECORDS
from tests.support import (
    FHIR_JSON,
    another_hub,
    client_for,
    hub_client,
    patient,
    token_auth,
    unique,
)

BHYT = "https://moh.gov.vn/fhir/sid/bhyt"
OUTCOME = FHIR_JSON | {"prefer": "return=OperationOutcome"}


def citizen_id(gender: str = "male", born: int = 1985) -> str:
    """Return a citizen ID agreeing with a gender and birth year, of this run's own."""
    century_sex = (born - 1900) // 100 * 2 + (gender == "female")
    return f"079{century_sex}{born % 100:02d}{random.randrange(10**6):06d}"


def good_patient(**extra: Any) -> dict[str, Any]:
    """Return a Patient the Vietnam profile finds nothing wrong or missing in."""
    resource = patient(citizen_id(), address=[{"city": "Huế"}], **extra)
    resource["identifier"].append({"system": BHYT, "value": f"{random.randrange(10**10):010d}"})
    return resource


def bad_patient() -> dict[str, Any]:
    """Return a Patient whose citizen ID says a woman, and who has no birth date."""
    resource = good_patient()
    resource["identifier"][0]["value"] = citizen_id("female")
    del resource["birthDate"]
    return resource


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    """Return a transaction Bundle POSTing each resource (an entry may carry a fullUrl)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {k: v for k, v in e.items() if k != "resource"}
            | {
                "resource": e["resource"],
                "request": {"method": "POST", "url": e["resource"]["resourceType"]},
            }
            for e in entries
        ],
    }


def rules(outcome: dict[str, Any]) -> dict[str, str]:
    """Return each issue's rule and its path."""
    return {
        i["details"]["coding"][0]["code"]: i["expression"][0]
        for i in outcome["issue"]
        if "details" in i
    }


async def stored(app: Any, reference: str) -> dict[str, Any]:
    doc = await app.state.mongo.resources.find_one({"_id": reference})
    assert doc is not None
    return dict(doc)


async def test_lenient_keeps_the_record_and_says_what_to_fix(
    app: Any, facility_client: Any
) -> None:
    client = await facility_client(unique("Q"))
    response = await client.post("/fhir/Patient", json=bad_patient(), headers=OUTCOME)
    assert response.status_code == 201, response.text
    found = rules(response.json())
    assert found["vn-patient/Patient.birthDate/min"] == "Patient.birthDate"
    assert found["vn-cccd/citizen-id"] == "Patient.gender"
    reference = "Patient/" + response.headers["location"].split("/")[-3]
    q = (await stored(app, reference))["_hub"]["q"]
    assert q["valid"] is False and q["identified"] is False
    assert {f["rule"] for f in q["findings"]} >= set(found)


async def test_a_good_record_is_kept_valid_and_identified(
    app: Any, client: httpx.AsyncClient
) -> None:
    response = await client.post("/fhir/Patient", json=good_patient(), headers=OUTCOME)
    assert response.status_code == 201, response.text
    assert response.json()["issue"][0]["severity"] == "information"
    reference = "Patient/" + response.headers["location"].split("/")[-3]
    q = (await stored(app, reference))["_hub"]["q"]
    assert (q["valid"], q["complete"], q["identified"], q["findings"]) == (True, True, True, [])


async def test_a_transaction_response_carries_each_entrys_findings(
    client: httpx.AsyncClient,
) -> None:
    bundle = transaction({"resource": good_patient()}, {"resource": bad_patient()})
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    first, second = (e["response"] for e in response.json()["entry"])
    assert "outcome" not in first
    found = rules(second["outcome"])
    assert found["vn-patient/Patient.birthDate/min"] == "Bundle.entry[1].resource.birthDate"


async def test_strict_refuses_a_profile_error_and_writes_nothing_of_the_transaction(
    app: Any,
) -> None:
    marker = unique()
    good = good_patient(telecom=[{"system": "email", "value": f"{marker}@example.org"}])
    bundle = transaction({"resource": good}, {"resource": bad_patient()})
    async with another_hub(app, profile_mode="strict") as strict:
        async with client_for(strict, "facility", facility=unique("S")) as client:
            refused = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
            assert refused.status_code == 422, refused.text
            found = rules(refused.json())
            assert found["vn-patient/Patient.birthDate/min"] == "Bundle.entry[1].resource.birthDate"
            assert "Bundle.entry[0]" not in " ".join(found.values())
            search = await client.get("/fhir/Patient", params={"telecom": f"{marker}@example.org"})
            assert search.json()["total"] == 0
            single = await client.post("/fhir/Patient", json=bad_patient(), headers=FHIR_JSON)
            assert single.status_code == 422
            assert single.json()["issue"][0]["severity"] == "error"
            # Must-support gaps are not errors: a Patient without an address passes.
            plain = good_patient()
            del plain["address"]
            assert (await client.post("/fhir/Patient", json=plain)).status_code == 201


async def test_off_checks_nothing_and_every_mode_enforces_the_base_model(app: Any) -> None:
    broken = good_patient(gender="unknown-gender")
    for mode in ("off", "lenient", "strict"):
        async with another_hub(app, profile_mode=mode) as hub:
            async with client_for(hub, "facility", facility=unique("O")) as client:
                response = await client.post("/fhir/Patient", json=broken, headers=FHIR_JSON)
                assert response.status_code == 400, (mode, response.text)
                assert response.json()["issue"][0]["expression"] == ["Patient.gender"]
                if mode == "off":
                    created = await client.post("/fhir/Patient", json=bad_patient())
                    assert created.status_code == 201
                    doc = await stored(app, f"Patient/{created.json()['id']}")
                    assert "q" not in doc["_hub"]


async def test_quality_counts_per_facility_and_rule_and_lists_the_records(
    app: Any, facility_client: Any
) -> None:
    code = unique("Q")
    client = await facility_client(code)
    for resource in (good_patient(), bad_patient(), bad_patient()):
        assert (await client.post("/fhir/Patient", json=resource)).status_code == 201
    summary = (await client.get("/quality")).json()
    [row] = summary["facilities"]
    assert row == {
        "facility": code,
        "records": 3,
        "checked": 3,
        "valid": 1,
        "complete": 3,
        "coded": 3,
        "patients": 3,
        "identified": 1,
    }
    broken = {r["rule"]: r["records"] for r in summary["rules"]}
    assert broken["vn-patient/Patient.birthDate/min"] == 2
    listed = (await client.get("/quality/findings", params={"rule": "vn-cccd/citizen-id"})).json()
    assert len(listed["records"]) == 2
    assert all(f["rule"] == "vn-cccd/citizen-id" for r in listed["records"] for f in r["findings"])
    # Fixing a record takes it off the list.
    first = listed["records"][0]["record"]
    fixed = good_patient(id=first.split("/")[1])
    assert (await client.put(f"/fhir/{first}", json=fixed)).status_code == 200
    again = (await client.get("/quality/findings", params={"rule": "vn-cccd/citizen-id"})).json()
    assert [r["record"] for r in again["records"]] == [listed["records"][1]["record"]]


async def test_a_facility_reads_only_its_own_quality_and_the_ministry_every_facilitys(
    app: Any, facility_client: Any
) -> None:
    code = unique("Q")
    client = await facility_client(code)
    assert (await client.post("/fhir/Patient", json=bad_patient())).status_code == 201
    other = await client.get("/quality", params={"facility": "F-SUITE"})
    assert other.status_code == 403
    async with hub_client(app, await token_auth(app, "ministry")) as ministry:
        everyone = (await ministry.get("/quality")).json()
        assert {code, "F-SUITE"} <= {r["facility"] for r in everyone["facilities"]}
        one = (await ministry.get("/quality", params={"facility": code})).json()
        assert {r["facility"] for r in one["facilities"]} == {code}
        assert (await ministry.get("/quality/findings")).status_code == 403
    mine = await client.get("/quality/findings", params={"_count": "abc"})
    assert mine.status_code == 400


async def test_every_valid_record_of_the_pack_round_trips_through_the_hub_with_no_finding(
    app: Any, facility_client: Any
) -> None:
    """The Vietnam pack's valid records, linked in one transaction as a facility sends them:
    stored without a finding, and read back as sent."""
    urns = {"Patient/p1": "urn:uuid:" + unique(), "Encounter/e1": "urn:uuid:" + unique()}
    urns["Organization/o1"] = "urn:uuid:" + unique()
    made = [record() for record in VN_RECORDS]
    text = json.dumps(made)
    for reference, urn in urns.items():
        text = text.replace(f'"{reference}"', f'"{urn}"')
    made = json.loads(text)
    first = {
        "Patient": "Patient/p1",
        "Encounter": "Encounter/e1",
        "Organization": "Organization/o1",
    }
    entries = []
    for resource in made:
        local = first.pop(resource["resourceType"], None)
        entries.append({"resource": resource} | ({"fullUrl": urns[local]} if local else {}))
    client = await facility_client("79001")
    bundle = transaction(*entries)
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    for sent, answer in zip(made, response.json()["entry"], strict=True):
        assert "outcome" not in answer["response"], answer
        reference = "/".join(answer["response"]["location"].split("/")[:2])
        q = (await stored(app, reference))["_hub"]["q"]
        assert (q["valid"], q["complete"], q["coded"], q["findings"]) == (True, True, True, [])
        read = (await client.get(f"/fhir/{reference}")).json()
        for name, value in sent.items():
            if not isinstance(value, dict) or "reference" not in value:
                assert read[name] == value, (reference, name)


async def test_an_indonesian_deployment_checks_the_indonesian_pack(app: Any) -> None:
    """A country is a setting: the same hub with EHRHUB_COUNTRY=id links persons by NIK and
    checks a NIK against the patient's birth date."""
    # As a process started with EHRHUB_COUNTRY=id and no EHRHUB_NATIONAL_ID_SYSTEM reads them.
    async with another_hub(app, country="id", national_id_system="") as hub:
        assert hub.state.settings.national_id_system == "https://fhir.kemkes.go.id/id/nik"
        async with client_for(hub, "facility", facility=unique("I")) as client:
            good = id_patient()
            good["identifier"][0]["value"] = f"320411051289{random.randrange(10**4):04d}"
            answer = await client.post("/fhir/Patient/$validate", json=good, headers=FHIR_JSON)
            assert answer.json()["issue"][0]["severity"] == "information", answer.text
            good["birthDate"] = "1989-12-06"
            answer = await client.post("/fhir/Patient", json=good, headers=OUTCOME)
            assert answer.status_code == 201, answer.text
            assert rules(answer.json()) == {"id-nik/nik": "Patient.birthDate"}
            # A Vietnamese record lacks what the Indonesian profile asks for.
            answer = await client.post("/fhir/Patient/$validate", json=good_patient())
            assert "id-patient/Patient.identifier:nik/min" in rules(answer.json())
