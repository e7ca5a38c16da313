"""Reference search, chained parameters and reverse chaining (_has).

https://hl7.org/fhir/R4/search.html#reference  https://hl7.org/fhir/R4/search.html#chaining
https://hl7.org/fhir/R4/search.html#has
"""

from typing import Any

import httpx
import pytest
from search.helpers import (
    BASE,
    CCCD,
    LOINC,
    Seeded,
    create,
    expect,
    observation,
    person,
    seed,
    tagged,
)
from support import unique

GLUCOSE = "2339-0"


@pytest.fixture(scope="module")
async def linked(client: httpx.AsyncClient) -> Seeded:
    """Two patients, a group, and Observations pointing at them in each way a Reference can."""
    tag = unique("t")
    ids: dict[str, str] = {}
    cccd = {"a": unique(), "b": unique()}

    async def add(name: str, resource: dict[str, Any]) -> str:
        ids[name] = await create(client, tagged(resource, tag))
        return ids[name]

    a = await add(
        "patient-a",
        {
            **person("An", "Hữu"),
            "identifier": [{"system": CCCD, "value": cccd["a"]}],
            "birthDate": "1970-01-01",
        },
    )
    b = await add(
        "patient-b",
        {
            **person("Bình", "Thị"),
            "identifier": [{"system": CCCD, "value": cccd["b"]}],
            "birthDate": "1990-06-01",
        },
    )
    group = await add("group", {"resourceType": "Group", "type": "person", "actual": True})
    await add("obs-a", observation(f"Patient/{a}"))
    await add(
        "obs-a-glucose",
        observation(f"Patient/{a}", code={"coding": [{"system": LOINC, "code": GLUCOSE}]}),
    )
    await add("obs-b", observation(f"Patient/{b}"))
    await add("obs-group", observation(f"Group/{group}"))
    await add(
        "obs-logical",
        observation({"identifier": {"system": CCCD, "value": cccd["a"]}}),
    )
    await add("obs-none", observation())
    ids["cccd-a"], ids["cccd-b"] = cccd["a"], cccd["b"]
    return Seeded(tag, ids)


async def table(
    client: httpx.AsyncClient, data: Seeded, path: str, param: str, cases: dict[str, set[str]]
) -> None:
    """Run `expect` with {names} in the values replaced by the ids they name."""
    await expect(
        client, data, path, param, {value.format(**data.ids): want for value, want in cases.items()}
    )


async def test_reference_by_type_and_id_or_id(client: httpx.AsyncClient, linked: Seeded) -> None:
    """A reference matches by Type/id, or by id alone for any target type."""
    both_a = {"obs-a", "obs-a-glucose"}
    await table(
        client,
        linked,
        "Observation",
        "subject",
        {
            "Patient/{patient-a}": both_a,
            "{patient-a}": both_a,
            "Group/{group}": {"obs-group"},
            "{group}": {"obs-group"},
            "Patient/{group}": set(),
        },
    )
    await table(
        client,
        linked,
        "Observation",
        "patient",
        {
            "{patient-b}": {"obs-b"},
            "Patient/{patient-b}": {"obs-b"},
            "{group}": set(),
            "{patient-a},{patient-b}": both_a | {"obs-b"},
        },
    )


async def test_reference_by_absolute_url_on_this_server(
    client: httpx.AsyncClient, linked: Seeded
) -> None:
    """An absolute URL under this server's base matches the relative reference it stands for."""
    await table(
        client,
        linked,
        "Observation",
        "subject",
        {f"{BASE}/Patient/{{patient-a}}": {"obs-a", "obs-a-glucose"}},
    )


async def test_type_modifier(client: httpx.AsyncClient, linked: Seeded) -> None:
    """subject:Type=id is subject=Type/id."""
    await table(
        client,
        linked,
        "Observation",
        "subject:Patient",
        {"{patient-a}": {"obs-a", "obs-a-glucose"}, "{group}": set()},
    )
    await table(
        client,
        linked,
        "Observation",
        "subject:Group",
        {"{group}": {"obs-group"}, "{patient-a}": set()},
    )


async def test_identifier_modifier(client: httpx.AsyncClient, linked: Seeded) -> None:
    """:identifier matches Reference.identifier, with or without its system."""
    await table(
        client,
        linked,
        "Observation",
        "subject:identifier",
        {
            f"{CCCD}|{{cccd-a}}": {"obs-logical"},
            "{cccd-a}": {"obs-logical"},
            f"{CCCD}|{{cccd-b}}": set(),
        },
    )


async def test_absolute_url_of_another_server_does_not_match(
    client: httpx.AsyncClient, linked: Seeded
) -> None:
    """An absolute URL on another server is not a reference to this server's resource."""
    elsewhere = f"http://other.example/fhir/Patient/{linked.ids['patient-a']}"
    assert await linked.search(client, "Observation", {"subject": elsewhere}) == set()


async def test_stored_absolute_reference_to_this_server_matches(
    client: httpx.AsyncClient,
) -> None:
    """A reference written as this server's absolute URL matches a search by Type/id or id
    (a relative reference and an absolute URL resolving to the same value match)."""
    patient = await create(client, person("Tuyệt", "Đối"))
    data = await seed(client, {"absolute": observation(f"{BASE}/Patient/{patient}")})
    assert await data.search(client, "Observation", {"subject": f"Patient/{patient}"}) == {
        "absolute"
    }
    assert await data.search(client, "Observation", {"patient": patient}) == {"absolute"}


async def test_versioned_reference_matches_by_type_and_id(client: httpx.AsyncClient) -> None:
    """A reference to one version of a resource matches a search by Type/id."""
    patient = await create(client, person("Phiên", "Bản"))
    data = await seed(client, {"versioned": observation(f"Patient/{patient}/_history/1")})
    assert await data.search(client, "Observation", {"subject": f"Patient/{patient}"}) == {
        "versioned"
    }


async def test_chain_to_identifier(client: httpx.AsyncClient, linked: Seeded) -> None:
    """A chain matches resources whose reference points at a matching resource; OR-ed values
    in a chain may match different targets."""
    both_a = {"obs-a", "obs-a-glucose"}
    await table(
        client,
        linked,
        "Observation",
        "subject:Patient.identifier",
        {
            f"{CCCD}|{{cccd-a}}": both_a,
            f"{CCCD}|{{cccd-a}},{CCCD}|{{cccd-b}}": both_a | {"obs-b"},
            f"{CCCD}|nobody": set(),
        },
    )
    await table(client, linked, "Observation", "patient.identifier", {"{cccd-b}": {"obs-b"}})


async def test_chain_to_dates_and_names(client: httpx.AsyncClient, linked: Seeded) -> None:
    """The chained parameter is searched with its own type's rules."""
    both_a = {"obs-a", "obs-a-glucose"}
    await expect(
        client,
        linked,
        "Observation",
        "patient.birthdate",
        {"1990": {"obs-b"}, "lt1980": both_a, "2000": set()},
    )
    await expect(client, linked, "Observation", "patient.family", {"bin": {"obs-b"}})
    await expect(client, linked, "Observation", "subject:Patient.name", {"an": both_a})


async def test_two_chains_are_and(client: httpx.AsyncClient, linked: Seeded) -> None:
    """Two chained parameters must both hold."""
    both = [("patient.birthdate", "1970"), ("patient.family", "an")]
    assert await linked.search(client, "Observation", both) == {"obs-a", "obs-a-glucose"}
    neither = [("patient.birthdate", "1970"), ("patient.family", "binh")]
    assert await linked.search(client, "Observation", neither) == set()


async def test_chain_on_a_non_reference_is_400(client: httpx.AsyncClient) -> None:
    """Only a reference parameter can be chained."""
    response = await client.get("/fhir/Observation", params={"code.name": "x"})
    assert response.status_code == 400, response.text


async def test_reverse_chaining(client: httpx.AsyncClient, linked: Seeded) -> None:
    """_has finds the resources that some resource of another type points at and meets."""
    await expect(
        client,
        linked,
        "Patient",
        "_has:Observation:patient:code",
        {GLUCOSE: {"patient-a"}, "8867-4": {"patient-a", "patient-b"}, "0000-0": set()},
    )
    await expect(
        client,
        linked,
        "Patient",
        "_has:Observation:subject:code",
        {f"{LOINC}|{GLUCOSE}": {"patient-a"}},
    )


async def test_reverse_chaining_and_forward_chain_nest(
    client: httpx.AsyncClient, linked: Seeded
) -> None:
    """_has combines with other parameters: AND with the patient's own birthdate."""
    params = [("_has:Observation:patient:code", "8867-4"), ("birthdate", "1990")]
    assert await linked.search(client, "Patient", params) == {"patient-b"}
