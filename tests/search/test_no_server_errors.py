"""Odd search requests get an answer or a 4xx, never a server error.

Random combinations (fixed seed) of every type's parameters, modifiers, malformed values and
result-control parameters, at type, compartment, system and $everything level.
"""

import random
from urllib.parse import quote

import httpx
from support import FHIR_JSON, patient, unique

from hub.search.registry import registry

VALUES = [
    "", "x", "eq2024", "2024-13-45", "ge", "1e400", "NaN", "|", "||", "a|b|c|d", "\\", "\\,",
    ",", ",,", "Patient/", "/x", "http://hub.test/fhir/Patient/1", "gt-5", "ap0",
    "9999-12-31T23:59:59.999+14:00", "0001-01-01", "lt1.5e3|http://unitsofmeasure.org|mg",
    "true", '{"$ne":null}', "Ñguyễn", "a" * 300, "sa2024-01", "eb", "ne2020", "ap1985",
]  # fmt: skip
MODIFIERS = [
    "", ":missing", ":not", ":text", ":exact", ":contains", ":of-type", ":identifier",
    ":Patient", ":bogus", ":iterate",
]  # fmt: skip
CONTROL = {
    "_count": ["0", "-1", "abc", "99999"],
    "_sort": ["x", "-", ",", "-date,_id"],
    "_summary": ["count", "true", "x"],
    "_elements": [",", "id,foo"],
    "_include": ["x", "Observation:subject", "Observation:*", "Patient:x:y:z", ":"],
    "_revinclude": ["Provenance:target", "x"],
    "_total": ["x", "none"],
    "_after": ["x", "W10"],
    "_has:Observation:patient:code": ["x"],
    "_has:X": ["x"],
    "subject:Patient.name": ["x"],
    "subject.x.y": ["z"],
    "_type": ["Patient,Bogus", "Observation"],
}
REQUESTS = 400


async def test_random_searches_never_fail_on_the_server(client: httpx.AsyncClient) -> None:
    """Every request answers with a status below 500."""
    created = await client.post("/fhir/Patient", json=patient(unique()), headers=FHIR_JSON)
    pid = created.json()["id"]
    rng = random.Random(20261126)
    types = sorted(registry().by_type)
    failures = []
    for _ in range(REQUESTS):
        resource_type = rng.choice(types)
        code = rng.choice(sorted(registry().params(resource_type)))
        params = [(code + rng.choice(MODIFIERS), rng.choice(VALUES))]
        if rng.random() < 0.4:
            name = rng.choice(sorted(CONTROL))
            params.append((name, rng.choice(CONTROL[name])))
        query = "&".join(f"{quote(k, safe=':.')}={quote(v, safe='')}" for k, v in params)
        path = rng.choice(
            [f"/fhir/{resource_type}", f"/fhir/Patient/{pid}/{resource_type}", "/fhir"]
            + [f"/fhir/Patient/{pid}/$everything"]
        )
        response = await client.get(f"{path}?{query}")
        if response.status_code >= 500:
            failures.append((path, params, response.text[:200]))
    assert failures == []
