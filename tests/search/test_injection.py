"""Search values that look like database operators are only ever FHIR search values.

A value such as {"$ne":null} is a string to compare, a name such as name[$regex] is an unknown
parameter: neither may widen a search, and none may crash the server.
"""

import httpx
import pytest
from search.helpers import Seeded, entries, get, ids, observation, person, seed


@pytest.fixture(scope="module")
async def targets(client: httpx.AsyncClient) -> Seeded:
    """Two patients and an Observation that an injected operator would find."""
    a = person("Tiêm", "Nhiễm", gender="male", birthDate="1980-01-01")
    return await seed(
        client,
        {"a": a, "b": person("Mã", "Độc"), "obs": observation("Patient/x")},
    )


async def test_operator_values_match_nothing(client: httpx.AsyncClient, targets: Seeded) -> None:
    """Operator-like values are compared as text and match none of the test's resources."""
    cases = [
        ("Patient", "name", '{"$ne":null}'),
        ("Patient", "name", '{"$regex":".*"}'),
        ("Patient", "name", ".*"),
        ("Patient", "name", "^T"),
        ("Patient", "name:exact", '{"$gt":""}'),
        ("Patient", "name:contains", "$"),
        ("Patient", "family:contains", ".*"),
        ("Patient", "identifier", "$where"),
        ("Patient", "identifier", '{"$exists":true}'),
        ("Patient", "identifier", "this.a == this.a"),
        ("Patient", "gender", '{"$in":["male","female"]}'),
        ("Patient", "_id", '{"$ne":"x"}'),
        ("Patient", "_id", "$ne"),
        ("Patient", "_tag", '{"$ne":null}'),
        ("Observation", "subject", '{"$ne":null}'),
        ("Observation", "subject", "Patient/$where"),
        ("Observation", "subject:identifier", '{"$gt":""}|x'),
        ("Observation", "code", '{"$ne":"1"}|{"$ne":"1"}'),
    ]
    got = {case: await targets.search(client, case[0], {case[1]: case[2]}) for case in cases}
    assert got == {case: set() for case in cases}


async def test_operator_names_are_unknown_parameters(
    client: httpx.AsyncClient, targets: Seeded
) -> None:
    """A parameter name holding an operator is unknown: ignored (so the tag alone decides)
    and reported by default, refused under strict handling."""
    for param in ["name[$regex]", "_id[$ne]", "name[$ne]", "$where", "gender[$exists]"]:
        body = (await get(client, "Patient", {param: ".*"}, targets.tag)).json()
        assert targets.names(ids(body)) == {"a", "b"}, param
        assert entries(body, "outcome"), param
        strict = await get(client, "Patient", {param: ".*"}, targets.tag, prefer="handling=strict")
        assert strict.status_code == 400, strict.text


async def test_operator_values_of_typed_parameters_are_400(client: httpx.AsyncClient) -> None:
    """A value that is not of the parameter's type is refused with 400, never 500."""
    for param, value in [
        ("birthdate", '{"$gt":""}'),
        ("birthdate", "ge$where"),
        ("_lastUpdated", '{"$ne":null}'),
        ("_count", '{"$gt":0}'),
        ("_sort", '{"$natural":1}'),
        ("_sort", "$where"),
        ("_include", "Patient:$where"),
        ("_summary", '{"$ne":null}'),
    ]:
        response = await get(client, "Patient", {param: value})
        assert response.status_code == 400, (param, value, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_odd_queries_never_fail_with_500(client: httpx.AsyncClient, targets: Seeded) -> None:
    """Odd or hostile query strings get an answer, a Bundle or an OperationOutcome, not 500;
    a Bundle that reports no ignored parameter matches none of the test's resources."""
    for query in [
        "name=%00",
        "name=%ff%fe",
        "name=" + "a" * 5000,
        "_has:Observation:patient:$where=1",
        "_has:$where:patient:code=1",
        "subject:Patient.$where=1",
        "_id=" + ",".join(["x"] * 500),
        "name=\\",
        "name=\\\\,\\",
        "name:missing=%7B%22%24ne%22%3Anull%7D",
    ]:
        path = "Observation" if query.startswith("subject") else "Patient"
        response = await client.get(f"/fhir/{path}?{query}&_tag=urn:test|{targets.tag}")
        assert response.status_code < 500, (query, response.text)
        body = response.json()
        assert body["resourceType"] in ("Bundle", "OperationOutcome"), query
        if response.status_code == 200 and not entries(body, "outcome"):
            assert not {"a", "b", "obs"} & targets.names(ids(body)), query
