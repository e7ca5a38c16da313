""":missing on each type of search parameter: resources with no value, or with one.

https://hl7.org/fhir/R4/search.html#modifiers
"""

import httpx
import pytest
from search.helpers import Seeded, assert_outcome, get, observation, person, seed


@pytest.fixture(scope="module")
async def sparse(client: httpx.AsyncClient) -> Seeded:
    """Patients and Observations each missing a different element."""
    full = person("Đủ", "Thông", "Tin", gender="female", birthDate="2001-02-03")
    full["address"] = [{"city": "Huế"}]
    return await seed(
        client,
        {
            "full": full,
            "bare": {"resourceType": "Patient", "name": [{"given": ["Vô", "Danh"]}]},
            "obs-full": observation(
                "Patient/x",
                effectiveDateTime="2024-01-01",
                valueQuantity={"value": 1, "unit": "mg"},
            ),
            "obs-bare": observation(),
        },
    )


async def check_missing(
    client: httpx.AsyncClient, data: Seeded, path: str, cases: dict[str, set[str]]
) -> None:
    """Check :missing=false finds the named resources and :missing=true the others."""
    everyone = {n for n in data.ids if n.startswith("obs") == (path == "Observation")}
    got = {
        param: (
            await data.search(client, path, {f"{param}:missing": "false"}),
            await data.search(client, path, {f"{param}:missing": "true"}),
        )
        for param in cases
    }
    assert got == {param: (has, everyone - has) for param, has in cases.items()}


async def test_missing_on_patient(client: httpx.AsyncClient, sparse: Seeded) -> None:
    """:missing=true finds resources without a value for the parameter, false those with one:
    tokens, dates and strings alike."""
    await check_missing(
        client,
        sparse,
        "Patient",
        {
            "gender": {"full"},
            "identifier": {"full"},
            "birthdate": {"full"},
            "family": {"full"},
            "address-city": {"full"},
            "given": {"full", "bare"},
        },
    )


async def test_missing_on_observation(client: httpx.AsyncClient, sparse: Seeded) -> None:
    """:missing works on references, dates of a choice element and quantities."""
    await check_missing(
        client,
        sparse,
        "Observation",
        {"subject": {"obs-full"}, "date": {"obs-full"}, "value-quantity": {"obs-full"}},
    )


async def test_missing_takes_true_or_false(client: httpx.AsyncClient) -> None:
    """Any other value of :missing is an error naming the parameter."""
    response = await get(client, "Patient", {"gender:missing": "maybe"})
    assert_outcome(response, 400, "gender:missing")
