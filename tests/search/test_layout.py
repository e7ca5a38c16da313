"""Search keys written in an older layout are rewritten before the hub serves."""

from typing import Any

import httpx
from support import FHIR_JSON, patient, unique

from hub.search import layout


async def test_keys_of_an_older_layout_are_rewritten(app: Any, client: httpx.AsyncClient) -> None:
    """A resource whose keys an older layout wrote is found again after the rewrite."""
    cccd = unique()
    created = await client.post("/fhir/Patient", json=patient(cccd), headers=FHIR_JSON)
    key = f"Patient/{created.json()['id']}"
    mongo = app.state.mongo
    await mongo.resources.update_one({"_id": key}, {"$set": {"_hub.sv": []}})
    await mongo.meta.replace_one({"_id": "search"}, {"layout": "0:older"}, upsert=True)
    search = f"/fhir/Patient?identifier={cccd}"
    assert (await client.get(search)).json()["total"] == 0

    rewritten = await layout.bring_up_to_date(app.state.store)

    assert rewritten >= 1
    assert (await client.get(search)).json()["total"] == 1
    assert (await mongo.meta.find_one({"_id": "search"}))["layout"] == layout.layout()
    assert await layout.bring_up_to_date(app.state.store) == 0


async def test_superseded_versions_keep_no_search_keys(app: Any, client: httpx.AsyncClient) -> None:
    """Only the current version is searched, so history copies carry no keys to store."""
    created = await client.post("/fhir/Patient", json=patient(unique()), headers=FHIR_JSON)
    rid = created.json()["id"]
    updated = await client.put(
        f"/fhir/Patient/{rid}", json=patient(unique(), id=rid), headers=FHIR_JSON
    )
    assert updated.status_code == 200, updated.text
    old = await app.state.mongo.history.find_one({"_id": f"Patient/{rid}/_history/1"})
    current = await app.state.mongo.resources.find_one({"_id": f"Patient/{rid}"})
    assert "sv" not in old["_hub"]
    assert current["_hub"]["sv"]
