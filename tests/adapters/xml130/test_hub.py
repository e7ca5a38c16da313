"""XML130 Bundles sent to the real hub: accepted whole, and idempotent when sent again."""

import io
from typing import Any

import httpx
import pytest
from support import FacilityClients, find_resources, transact

from adapters.base import BHYT_SYSTEM, CCCD_SYSTEM, Facility, Rejection
from adapters.xml130 import parse
from adapters.xml130.generate import episode, episodes, facility_code, submission

SEED = 130_002
FACILITY = facility_code(SEED)


@pytest.fixture
async def client(facility_client: FacilityClients) -> httpx.AsyncClient:
    """Return the client of the system of the facility these tests send for."""
    return await facility_client(FACILITY)


def bundles(data: bytes) -> list[dict[str, Any]]:
    """Return the Bundles of a file, failing on any rejection."""
    found = list(parse(io.BytesIO(data)))
    assert not [o for o in found if isinstance(o, Rejection)], found
    return [o for o in found if not isinstance(o, Rejection)]


async def test_generated_bundles_land_in_the_hub(client: httpx.AsyncClient) -> None:
    data = submission(FACILITY, episodes(8, SEED))
    for bundle in bundles(data):
        await transact(client, bundle)
    for tables in episodes(8, SEED):
        xml1 = tables["XML1"][0]
        (patient,) = await find_resources(
            client, "Patient", identifier=f"{CCCD_SYSTEM}|{xml1['SO_CCCD']}"
        )
        assert patient["name"][0]["text"] == xml1["HO_TEN"]
        visit = Facility(FACILITY).system("visit")
        (enc,) = await find_resources(client, "Encounter", identifier=f"{visit}|{xml1['MA_LK']}")
        assert enc["subject"]["reference"] == f"Patient/{patient['id']}"
        for card in xml1["MA_THE_BHYT"].split(";"):
            (coverage,) = await find_resources(
                client, "Coverage", identifier=f"{BHYT_SYSTEM}|{card}"
            )
            assert coverage["beneficiary"]["reference"] == f"Patient/{patient['id']}"
        found = await find_resources(client, "Observation", encounter=f"Encounter/{enc['id']}")
        assert len(found) == len(tables["XML4"])


async def test_sending_a_hoso_twice_keeps_one_copy_and_a_correction_updates(
    client: httpx.AsyncClient,
) -> None:
    tables = episode(SEED, 100, FACILITY)
    xml1 = tables["XML1"][0]
    (bundle,) = bundles(submission(FACILITY, [tables]))
    await transact(client, bundle)
    await transact(client, bundle)
    mrn = Facility(FACILITY).system("mrn")
    visit = Facility(FACILITY).system("visit")
    (patient,) = await find_resources(client, "Patient", identifier=f"{mrn}|{xml1['MA_BN']}")
    (enc,) = await find_resources(client, "Encounter", identifier=f"{visit}|{xml1['MA_LK']}")
    for card in xml1["MA_THE_BHYT"].split(";"):
        assert (
            len(await find_resources(client, "Coverage", identifier=f"{BHYT_SYSTEM}|{card}")) == 1
        )
    conditions = await find_resources(client, "Condition", encounter=f"Encounter/{enc['id']}")
    expected = 1 + len([c for c in xml1["MA_BENH_KT"].split(";") if c])
    assert len(conditions) == expected
    requests = await find_resources(client, "MedicationRequest", encounter=f"Encounter/{enc['id']}")
    assert len(requests) == len(tables["XML2"])

    xml1["HO_TEN"] = "Trần Thị Ngọc Ánh"
    (corrected,) = bundles(submission(FACILITY, [tables]))
    await transact(client, corrected)
    (updated,) = await find_resources(client, "Patient", identifier=f"{mrn}|{xml1['MA_BN']}")
    assert updated["id"] == patient["id"]
    assert updated["name"][0]["family"] == "Trần"
    assert updated["name"][0]["given"] == ["Thị", "Ngọc", "Ánh"]
    assert int(updated["meta"]["versionId"]) > int(patient["meta"]["versionId"])
    (same,) = await find_resources(client, "Encounter", identifier=f"{visit}|{xml1['MA_LK']}")
    assert same["id"] == enc["id"]


async def test_keys_with_url_characters_stay_one_record(client: httpx.AsyncClient) -> None:
    tables = episode(SEED, 200, FACILITY)
    ma_lk = "LK+2025/07 & 1"
    for rows in tables.values():
        for row in rows:
            row["MA_LK"] = ma_lk
    tables["XML1"][0]["MA_BN"] = "BN 42+7"
    (bundle,) = bundles(submission(FACILITY, [tables]))
    await transact(client, bundle)
    await transact(client, bundle)
    visit = Facility(FACILITY).system("visit")
    (enc,) = await find_resources(client, "Encounter", identifier=f"{visit}|{ma_lk}")
    assert enc["identifier"][0]["value"] == ma_lk
    mrn = Facility(FACILITY).system("mrn")
    assert len(await find_resources(client, "Patient", identifier=f"{mrn}|BN 42+7")) == 1
