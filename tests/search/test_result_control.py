"""Result control: paging, _sort, _total, _summary, _elements, _include, _revinclude, POST
search, system-level search, and how unknown parameters and modifiers are handled.

https://hl7.org/fhir/R4/search.html#return  https://hl7.org/fhir/R4/http.html#paging
"""

from collections import Counter
from typing import Any

import httpx
import pytest
from search.helpers import (
    Seeded,
    assert_outcome,
    bundle,
    create,
    entries,
    get,
    ids,
    keys,
    link,
    observation,
    person,
    seed,
    tag_of,
    tagged,
    walk_pages,
)
from support import FHIR_JSON, unique

SUBSETTED = "SUBSETTED"


def subsetted(resource: dict[str, Any]) -> bool:
    """Tell whether a resource carries the SUBSETTED tag."""
    return any(t.get("code") == SUBSETTED for t in resource.get("meta", {}).get("tag", []))


# paging


async def test_pages_give_every_match_once(client: httpx.AsyncClient) -> None:
    """_count cuts the matches into pages linked by next; together they hold every match."""
    data = await seed(client, {f"p{i}": person("Phân", f"Trang{i}") for i in range(7)})
    first = await get(client, "Patient", {"_count": "3"}, data.tag)
    assert first.json()["total"] == 7
    pages = await walk_pages(client, first)
    assert [len(p) for p in pages] == [3, 3, 1]
    everything = [k for page in pages for k in page]
    assert sorted(everything) == sorted(f"Patient/{i}" for i in data.ids.values())


async def test_previous_link_returns_the_page_before(client: httpx.AsyncClient) -> None:
    """The previous link of the second page gives the first page again."""
    data = await seed(client, {f"p{i}": person("Lùi", f"Trang{i}") for i in range(5)})
    first = await bundle(client, "Patient", {"_count": "2"}, data.tag)
    assert link(first, "previous") is None
    second = (await client.get(link(first, "next") or "")).json()
    assert link(second, "previous") is not None
    again = (await client.get(link(second, "previous") or "")).json()
    assert keys(again) == keys(first)
    assert set(keys(second)).isdisjoint(keys(first))


@pytest.mark.parametrize("sort", ["", "birthdate", "-birthdate", "family,given"])
async def test_paging_across_concurrent_writes(client: httpx.AsyncClient, sort: str) -> None:
    """Creating, deleting and updating matches between pages neither skips nor repeats any
    original match that still matches."""
    tag = unique("t")
    originals = {
        await create(
            client, tagged(person(f"Song{i % 3}", f"Song{i}", birthDate=f"19{60 + i}-01-01"), tag)
        )
        for i in range(8)
    }
    params = {"_count": "3"} | ({"_sort": sort} if sort else {})
    first = await get(client, "Patient", params, tag)
    seen_first = {k.split("/")[1] for k in keys(first.json())}
    unseen = sorted(originals - seen_first)
    deleted, updated_unseen = unseen[0], unseen[1]
    updated_seen = sorted(seen_first)[0]

    async def write(page_number: int) -> None:
        await create(client, tagged(person("SongMới", f"x{page_number}"), tag))
        if page_number != 1:
            return
        assert (await client.delete(f"/fhir/Patient/{deleted}")).status_code in (200, 204)
        for pid in (updated_unseen, updated_seen):
            current = (await client.get(f"/fhir/Patient/{pid}")).json()
            current["active"] = True
            response = await client.put(f"/fhir/Patient/{pid}", json=current, headers=FHIR_JSON)
            assert response.status_code == 200, response.text

    pages = await walk_pages(client, first, write)
    counts = Counter(k.split("/")[1] for page in pages for k in page)
    assert all(n == 1 for n in counts.values()), counts
    assert originals - {deleted} <= set(counts)


@pytest.fixture(scope="module")
async def sortable(client: httpx.AsyncClient) -> Seeded:
    """Patients whose families repeat and whose birth dates differ."""
    return await seed(
        client,
        {
            "bui-1990": person("Bùi", "Một", birthDate="1990-05-01"),
            "an-1980": person("An", "Hai", birthDate="1980-05-01"),
            "bui-2000": person("Bùi", "Ba", birthDate="2000-05-01"),
            "cao-1970": person("Cao", "Bốn", birthDate="1970-05-01"),
            "an-1995": person("An", "Năm", birthDate="1995-05-01"),
        },
    )


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("birthdate", ["cao-1970", "an-1980", "bui-1990", "an-1995", "bui-2000"]),
        ("-birthdate", ["bui-2000", "an-1995", "bui-1990", "an-1980", "cao-1970"]),
        ("family,-birthdate", ["an-1995", "an-1980", "bui-2000", "bui-1990", "cao-1970"]),
        ("-family,birthdate", ["cao-1970", "bui-1990", "bui-2000", "an-1980", "an-1995"]),
    ],
)
async def test_sort(
    client: httpx.AsyncClient, sortable: Seeded, sort: str, expected: list[str]
) -> None:
    """_sort orders by each key in turn; '-' makes a key descending."""
    body = await bundle(client, "Patient", {"_sort": sort}, sortable.tag)
    order = [sortable.names({k.split("/")[1]}).pop() for k in keys(body)]
    assert order == expected


async def test_sort_pages_keep_the_order(client: httpx.AsyncClient, sortable: Seeded) -> None:
    """Pages of a sorted search continue the order where the previous page stopped."""
    first = await get(client, "Patient", {"_sort": "-birthdate", "_count": "2"}, sortable.tag)
    pages = await walk_pages(client, first)
    order = [sortable.names({k.split("/")[1]}).pop() for page in pages for k in page]
    assert order == ["bui-2000", "an-1995", "bui-1990", "an-1980", "cao-1970"]


async def test_sort_by_date_of_observations(client: httpx.AsyncClient) -> None:
    """_sort=date orders Observations by their effective date, a Period by its start."""
    data = await seed(
        client,
        {
            "mid": observation(effectiveDateTime="2024-06-01"),
            "early": observation(effectivePeriod={"start": "2024-01-01", "end": "2024-02-01"}),
            "late": observation(effectiveInstant="2024-12-01T00:00:00Z"),
        },
    )
    body = await bundle(client, "Observation", {"_sort": "date"}, data.tag)
    assert [data.names({k.split("/")[1]}).pop() for k in keys(body)] == ["early", "mid", "late"]


async def test_search_sees_only_current_versions(client: httpx.AsyncClient) -> None:
    """A search matches the current version: not an old value, not a deleted resource."""
    data = await seed(client, {"moved": person("Cũ", "Tên"), "gone": person("Cũ", "Mất")})
    current = (await client.get(f"/fhir/Patient/{data.ids['moved']}")).json()
    current["name"] = [{"family": "Mới", "given": ["Tên"]}]
    response = await client.put(
        f"/fhir/Patient/{data.ids['moved']}", json=current, headers=FHIR_JSON
    )
    assert response.status_code == 200, response.text
    deleted = await client.delete(f"/fhir/Patient/{data.ids['gone']}")
    assert deleted.status_code in (200, 204), deleted.text
    assert await data.search(client, "Patient", {"family": "cu"}) == set()
    assert await data.search(client, "Patient", {"family": "moi"}) == {"moved"}
    assert await data.search(client, "Patient", {}) == {"moved"}


# totals and summaries


async def test_total_none_omits_total(client: httpx.AsyncClient, sortable: Seeded) -> None:
    """_total=none leaves Bundle.total out; accurate gives the number of matches."""
    body = await bundle(client, "Patient", {"_total": "none"}, sortable.tag)
    assert "total" not in body and len(entries(body)) == 5
    body = await bundle(client, "Patient", {"_total": "accurate", "_count": "1"}, sortable.tag)
    assert body["total"] == 5 and len(entries(body)) == 1


async def test_summary_count_gives_only_the_total(
    client: httpx.AsyncClient, sortable: Seeded
) -> None:
    """_summary=count returns the count of matches and no resources."""
    body = await bundle(client, "Patient", {"_summary": "count"}, sortable.tag)
    assert body["total"] == 5
    assert not body.get("entry")


async def test_summary_true_keeps_summary_elements(client: httpx.AsyncClient) -> None:
    """_summary=true keeps the summary elements, drops the rest and marks SUBSETTED."""
    full = person(
        "Tóm",
        "Tắt",
        gender="male",
        maritalStatus={"text": "Đã kết hôn"},
        communication=[{"language": {"text": "Tiếng Việt"}}],
    )
    data = await seed(client, {"full": full})
    body = await bundle(client, "Patient", {"_summary": "true"}, data.tag)
    (resource,) = [e["resource"] for e in entries(body)]
    assert resource["name"] == full["name"] and resource["gender"] == "male"
    assert "maritalStatus" not in resource and "communication" not in resource
    assert subsetted(resource)
    assert data.tag in {t.get("code") for t in resource["meta"]["tag"]}


async def test_summary_data_and_text(client: httpx.AsyncClient) -> None:
    """_summary=data drops the narrative; _summary=text keeps it and little else."""
    narrative = {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">Hoa</div>',
    }
    data = await seed(client, {"p": person("Tường", "Thuật", gender="female", text=narrative)})
    body = await bundle(client, "Patient", {"_summary": "data"}, data.tag)
    (resource,) = [e["resource"] for e in entries(body)]
    assert "text" not in resource and resource["gender"] == "female" and subsetted(resource)
    body = await bundle(client, "Patient", {"_summary": "text"}, data.tag)
    (resource,) = [e["resource"] for e in entries(body)]
    assert resource["text"] == narrative and "gender" not in resource and subsetted(resource)


async def test_elements_keeps_the_asked_and_mandatory(client: httpx.AsyncClient) -> None:
    """_elements returns the elements asked for (and the mandatory ones), marked SUBSETTED."""
    data = await seed(
        client,
        {
            "patient": person("Chọn", "Lọc", gender="female", birthDate="1999-09-09"),
            "observation": observation(
                "Patient/x", valueQuantity={"value": 3, "unit": "mg"}, issued="2024-01-01T00:00:00Z"
            ),
        },
    )
    body = await bundle(client, "Patient", {"_elements": "gender,birthDate"}, data.tag)
    (patient,) = [e["resource"] for e in entries(body)]
    assert set(patient) == {"resourceType", "id", "meta", "gender", "birthDate"}
    assert subsetted(patient)
    body = await bundle(client, "Observation", {"_elements": "subject"}, data.tag)
    (obs,) = [e["resource"] for e in entries(body)]
    assert {"subject", "status", "code"} <= set(obs)
    assert "valueQuantity" not in obs and "issued" not in obs
    assert subsetted(obs)
    body = await bundle(client, "Observation", {"_elements": "value"}, data.tag)
    (obs,) = [e["resource"] for e in entries(body)]
    assert obs["valueQuantity"] == {"value": 3, "unit": "mg"} and "subject" not in obs


# _include and _revinclude


@pytest.fixture(scope="module")
async def visit(client: httpx.AsyncClient) -> Seeded:
    """Observation about patient A made during an Encounter of patient B."""
    tag = unique("t")
    a = await create(client, tagged(person("Bao", "Gồm"), tag))
    b = await create(client, tagged(person("Lặp", "Lại"), tag))
    encounter = await create(
        client,
        tagged(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{b}"},
            },
            tag,
        ),
    )
    obs = await create(
        client,
        tagged(observation(f"Patient/{a}", encounter={"reference": f"Encounter/{encounter}"}), tag),
    )
    return Seeded(tag, {"a": a, "b": b, "encounter": encounter, "obs": obs})


async def test_include_adds_referenced_resources(client: httpx.AsyncClient, visit: Seeded) -> None:
    """_include adds what the matches point at, as include entries outside the total."""
    body = await bundle(client, "Observation", {"_include": "Observation:subject"}, visit.tag)
    assert visit.names(ids(body)) == {"obs"}
    assert visit.names(ids(body, "include")) == {"a"}
    assert body["total"] == 1


async def test_include_iterate_follows_included_resources(
    client: httpx.AsyncClient, visit: Seeded
) -> None:
    """_include:iterate also follows references of included resources."""
    params = [("_include", "Observation:encounter"), ("_include:iterate", "Encounter:subject")]
    body = await bundle(client, "Observation", params, visit.tag)
    assert visit.names(ids(body, "include")) == {"encounter", "b"}


async def test_include_without_iterate_applies_to_matches_only(
    client: httpx.AsyncClient, visit: Seeded
) -> None:
    """A plain _include of another type's parameter follows nothing from included resources."""
    params = [("_include", "Observation:encounter"), ("_include", "Encounter:subject")]
    body = await bundle(client, "Observation", params, visit.tag)
    assert visit.names(ids(body, "include")) == {"encounter"}


async def test_include_with_target_type(client: httpx.AsyncClient, visit: Seeded) -> None:
    """Type:parameter:target includes only references to that target type."""
    body = await bundle(client, "Observation", {"_include": "Observation:subject:Group"}, visit.tag)
    assert ids(body, "include") == set()


async def test_revinclude_adds_resources_pointing_at_matches(
    client: httpx.AsyncClient, visit: Seeded
) -> None:
    """_revinclude adds the resources whose parameter points at a match."""
    body = await bundle(
        client, "Patient", {"_revinclude": "Observation:subject", "_id": visit.ids["a"]}
    )
    assert visit.names(ids(body)) == {"a"}
    assert visit.names(ids(body, "include")) == {"obs"}
    body = await bundle(client, "Patient", {"_revinclude": "Encounter:subject"}, visit.tag)
    assert visit.names(ids(body)) == {"a", "b"}
    assert visit.names(ids(body, "include")) == {"encounter"}


# POST and system-level search


async def test_post_search_with_form_body(client: httpx.AsyncClient, sortable: Seeded) -> None:
    """POST [type]/_search takes its parameters as a form body and answers like GET."""
    response = await client.post(
        "/fhir/Patient/_search",
        data={"family": "bui", "_tag": tag_of(sortable.tag)},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert sortable.names(ids(response.json())) == {"bui-1990", "bui-2000"}


async def test_post_search_combines_url_and_body_and_pages(
    client: httpx.AsyncClient, sortable: Seeded
) -> None:
    """POST _search joins the URL's parameters and the body's; its next link pages on."""
    response = await client.post(
        "/fhir/Patient/_search",
        params={"_tag": tag_of(sortable.tag)},
        data={"family": "an", "_count": "1"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    pages = await walk_pages(client, response)
    found_ids = {k.split("/")[1] for page in pages for k in page}
    assert [len(p) for p in pages] == [1, 1]
    assert sortable.names(found_ids) == {"an-1980", "an-1995"}


async def test_system_search_over_types(client: httpx.AsyncClient, visit: Seeded) -> None:
    """GET [base]?_type=... searches those types; without _type, every type."""
    body = await bundle(client, "", {"_type": "Patient,Observation"}, visit.tag)
    assert visit.names(ids(body)) == {"a", "b", "obs"}
    body = await bundle(client, "", {"_type": "Encounter"}, visit.tag)
    assert visit.names(ids(body)) == {"encounter"}
    body = await bundle(client, "", {}, visit.tag)
    assert visit.names(ids(body)) == {"a", "b", "obs", "encounter"}


# unknown parameters and modifiers


async def test_unknown_parameter_is_ignored_and_reported(
    client: httpx.AsyncClient, sortable: Seeded
) -> None:
    """By default an unknown parameter is ignored, and an OperationOutcome entry says so."""
    body = await bundle(client, "Patient", {"favourite-colour": "blue"}, sortable.tag)
    assert len(ids(body)) == 5
    (outcome,) = [e["resource"] for e in entries(body, "outcome")]
    assert outcome["resourceType"] == "OperationOutcome"
    assert "favourite-colour" in str(outcome)


async def test_unknown_parameter_under_strict_handling_is_400(
    client: httpx.AsyncClient, sortable: Seeded
) -> None:
    """Prefer: handling=strict refuses an unknown parameter."""
    response = await get(
        client, "Patient", {"favourite-colour": "blue"}, sortable.tag, prefer="handling=strict"
    )
    assert_outcome(response, 400, "favourite-colour")


async def test_strict_handling_accepts_known_parameters(
    client: httpx.AsyncClient, sortable: Seeded
) -> None:
    """Prefer: handling=strict changes nothing for a search of known parameters."""
    response = await get(
        client, "Patient", {"family": "cao"}, sortable.tag, prefer="handling=strict"
    )
    assert response.status_code == 200, response.text
    assert sortable.names(ids(response.json())) == {"cao-1970"}
    assert not entries(response.json(), "outcome")


async def test_unknown_or_unfit_modifier_is_400(client: httpx.AsyncClient) -> None:
    """A modifier the parameter's type does not have is refused, naming the parameter."""
    for path, param in [
        ("Patient", "family:sounds-like"),
        ("Patient", "birthdate:exact"),
        ("Patient", "gender:contains"),
        ("Observation", "subject:NotAType"),
        ("Observation", "subject:Encounter"),
    ]:
        assert_outcome(await get(client, path, {param: "x"}), 400, param.split(":")[0])


async def test_bad_result_parameters_are_400(client: httpx.AsyncClient) -> None:
    """A result parameter with a value it does not take is refused, naming it."""
    for param, value in [("_count", "many"), ("_count", "-1"), ("_summary", "maybe")]:
        assert_outcome(await get(client, "Patient", {param: value}), 400, param)
    assert_outcome(await get(client, "Patient", {"_total": "some"}), 400, "_total")
