"""How a group of resources becomes one transaction: keys, ids, references, rejections."""

import json
from pathlib import Path
from typing import Any

from support import patient

from adapters.base import Facility, Rejection
from adapters.fhir import parse
from adapters.fhir.group import FHIR_ID_KIND, hub_id

FACILITY = Facility("79003")


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def collection(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": list(entries)}


def test_ids_and_references_are_the_facilitys_own(tmp_path: Path) -> None:
    person = patient("079085000001", id="p1")
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "http://emr.example/fhir/Patient/p1"},
        "encounter": {"reference": "Encounter/e9/_history/2"},
        "hasMember": [
            {"reference": "#inner"},
            {"reference": "https://other.example/Observation/1"},
        ],
    }
    (bundle,) = parse(
        write(
            tmp_path,
            collection(
                {"fullUrl": "http://emr.example/fhir/Patient/p1", "resource": person},
                {"resource": observation},
            ),
        ),
        FACILITY,
    )
    assert not isinstance(bundle, Rejection)
    _, first, second = bundle["entry"]
    assert first["request"]["url"] == f"Patient?identifier={FACILITY.system(FHIR_ID_KIND)}|p1"
    assert first["resource"]["id"] == hub_id(FACILITY, "Patient", "p1")
    assert first["resource"]["identifier"][0]["value"] == "079085000001"  # its own, kept
    refs = second["resource"]
    assert refs["subject"]["reference"] == first["fullUrl"]
    assert refs["encounter"]["reference"] == f"Encounter/{hub_id(FACILITY, 'Encounter', 'e9')}"
    assert refs["hasMember"] == observation["hasMember"]
    assert refs["performer"] == [{"reference": bundle["entry"][0]["fullUrl"]}]


def test_resources_that_cannot_be_keyed_or_linked_are_rejected(tmp_path: Path) -> None:
    anonymous = {"resourceType": "Patient", "name": [{"text": "Ẩn danh"}]}
    (found,) = parse(write(tmp_path, collection({"resource": anonymous})), FACILITY)
    assert found == Rejection(
        "bundle.json Bundle.entry[0]",
        "Patient has neither an id nor an identifier with system and value",
    )
    dangling = patient(id="p2", link=[{"other": {"reference": "urn:uuid:0000"}, "type": "seealso"}])
    (found,) = parse(write(tmp_path, collection({"resource": dangling})), FACILITY)
    assert isinstance(found, Rejection) and "urn:uuid:0000" in found.reason


def test_searchset_outcomes_are_left_out(tmp_path: Path) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    data = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": patient(id="p3"), "search": {"mode": "match"}},
            {"resource": outcome, "search": {"mode": "outcome"}},
        ],
    }
    (bundle,) = parse(write(tmp_path, data), FACILITY)
    assert not isinstance(bundle, Rejection)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Organization", "Patient"]
