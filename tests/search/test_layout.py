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
