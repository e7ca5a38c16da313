"""The official FHIR R4 examples (npm `hl7.fhir.r4.examples` 4.0.1, copied into
`fixtures/r4-examples/`) against base validation and a real hub.

https://hl7.org/fhir/R4/downloads.html
"""

from typing import Any

import httpx
import pytest
from support import FHIR_JSON, FIXTURES, fixture_json

from hub.fhir.outcome import InvalidResource
from hub.fhir.resource_types import COMPUTED, stored_types
from hub.fhir.validate import validate_resource

# The measures are computed by the hub, never written: their examples are not sent.
EXAMPLES = sorted(
    p.name
    for p in (FIXTURES / "r4-examples").glob("*.json")
    if not p.name.startswith(tuple(f"{t}-" for t in COMPUTED))
)
# Simple clinical and administrative types, as a facility system sends them. The examples
# reference resources the hub does not hold (Patient/example, ...): a create accepts that.
WRITTEN = [
    "Patient-example.json",
    "Observation-example.json",
    "Condition-example.json",
    "Encounter-example.json",
    "Organization-hl7pay.json",
]
# The server assigns id and meta, so they are not part of what must survive a round trip.
SERVER_ELEMENTS = ("id", "meta")


def example(name: str) -> dict[str, Any]:
    """Return a copied official example."""
    resource: dict[str, Any] = fixture_json("r4-examples", name)
    return resource


def content(resource: dict[str, Any]) -> dict[str, Any]:
    """Return a resource without the elements the server assigns."""
    return {k: v for k, v in resource.items() if k not in SERVER_ELEMENTS}


def test_every_stored_type_has_an_example() -> None:
    """The copied examples cover every resource type the hub stores."""
    assert {example(name)["resourceType"] for name in EXAMPLES} == set(stored_types())


@pytest.mark.parametrize("name", EXAMPLES)
def test_base_validation_accepts_the_example(name: str) -> None:
    """An official example passes base validation and is reported as its own type."""
    resource = example(name)
    assert validate_resource(resource) == resource["resourceType"]


@pytest.mark.parametrize("name", WRITTEN)
async def test_the_hub_stores_the_example_and_reads_it_back(
    client: httpx.AsyncClient, name: str
) -> None:
    """A facility system creates an official example and reads back the same content."""
    sent = content(example(name))
    resource_type = sent["resourceType"]
    created = await client.post(f"/fhir/{resource_type}", json=sent, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    read = await client.get(f"/fhir/{resource_type}/{created.json()['id']}")
    assert read.status_code == 200, read.text
    assert content(read.json()) == sent


# A removed element, as opposed to one set to a value.
REMOVE = object()
# Each way of breaking Observation-example.json: the element path the OperationOutcome must
# name, the JSON keys that lead to the element, and the value put there.
BREAKS = [
    ("Observation.code.coding[0].colour", ("code", "coding", 0, "colour"), "red"),
    ("Observation.valueQuantity.value", ("valueQuantity", "value"), "185 lbs"),
    ("Observation.category", ("category",), {"text": "Vital Signs"}),
    ("Observation.status", ("status",), REMOVE),
]


def broken(keys: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """Return Observation-example.json with the element at `keys` set to `value`, or removed."""
    resource = example("Observation-example.json")
    *parents, last = keys
    node: Any = resource
    for key in parents:
        node = node[key]
    if value is REMOVE:
        del node[last]
    else:
        node[last] = value
    return resource


@pytest.mark.parametrize(("path", "keys", "value"), BREAKS)
def test_base_validation_names_what_breaks_an_example(
    path: str, keys: tuple[str | int, ...], value: Any
) -> None:
    """Base validation refuses a broken example, naming the broken element."""
    with pytest.raises(InvalidResource) as refused:
        validate_resource(broken(keys, value))
    assert [path] in [issue.expression for issue in refused.value.issues]


@pytest.mark.parametrize(("path", "keys", "value"), BREAKS)
async def test_the_hub_refuses_a_broken_example_naming_the_element(
    client: httpx.AsyncClient, path: str, keys: tuple[str | int, ...], value: Any
) -> None:
    """Creating a broken example answers 400 with an OperationOutcome naming the element."""
    response = await client.post("/fhir/Observation", json=broken(keys, value), headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert path in [e for issue in outcome["issue"] for e in issue.get("expression", [])], outcome
