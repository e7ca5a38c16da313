"""Date search over date, dateTime, instant and Period: every prefix, at every precision.

A date value stands for the range its precision covers (2024-03 is all of March); a Period
is the range from its start to its end, open where a bound is missing. Each prefix compares
the search range with the resource's range.
https://hl7.org/fhir/R4/search.html#date  https://hl7.org/fhir/R4/search.html#prefix
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from search.helpers import (
    Seeded,
    assert_outcome,
    create,
    expect,
    get,
    observation,
    person,
    seed,
    tagged,
)
from support import another_hub, client_for, unique

from hub.app import create_app
from hub.search.values import date_range
from hub.settings import Settings

ALL_2024 = {"day", "morning", "instant", "feb", "april", "period-in-march", "period-spanning"}


@pytest.fixture(scope="module")
async def dated(client: httpx.AsyncClient) -> Seeded:
    """Observations dated by each kind of date element."""
    return await seed(
        client,
        {
            "day": observation(effectiveDateTime="2024-03-15"),
            "morning": observation(effectiveDateTime="2024-03-15T08:00:00+07:00"),
            "instant": observation(effectiveInstant="2024-03-20T10:30:00.000Z"),
            "feb": observation(effectiveDateTime="2024-02-28T23:00:00Z"),
            "april": observation(effectiveDateTime="2024-04-01T12:00:00Z"),
            "period-in-march": observation(
                effectivePeriod={"start": "2024-03-10", "end": "2024-03-12"}
            ),
            "period-spanning": observation(
                effectivePeriod={"start": "2024-02-20", "end": "2024-04-10"}
            ),
            "open-ended": observation(effectivePeriod={"start": "2024-03-05"}),
            "year-2023": observation(effectiveDateTime="2023"),
            "far": observation(effectiveDateTime="2000-01-01"),
            "undated": observation(),
        },
    )


async def test_eq_means_the_search_range_contains_the_value(
    client: httpx.AsyncClient, dated: Seeded
) -> None:
    """eq (the default) matches when the search range fully contains the resource's range:
    2024-03 holds a day, a time and an instant in March and a Period inside it, not a Period
    that spans March or is open-ended."""
    month = {"day", "morning", "instant", "period-in-march"}
    await expect(
        client,
        dated,
        "Observation",
        "date",
        {
            "2024-03": month,
            "eq2024-03": month,
            "2024-03-15": {"day", "morning"},
            "2024": ALL_2024,
            "2024-03-15T01:00:00Z": {"morning"},
            "2024-03-15T08:00:00+07:00": {"morning"},
            "2024-03-20T10:30:00Z": {"instant"},
            "2024-03-11": set(),
            "2023,2024-03-15": {"year-2023", "day", "morning"},
        },
    )


async def test_ne_means_not_contained(client: httpx.AsyncClient, dated: Seeded) -> None:
    """ne matches a resource whose range the search range does not fully contain."""
    outside = {"feb", "april", "period-spanning", "open-ended", "year-2023", "far"}
    await expect(client, dated, "Observation", "date", {"ne2024-03": outside})


async def test_gt_and_lt_overlap_the_range_beyond(client: httpx.AsyncClient, dated: Seeded) -> None:
    """gt / lt match when the range above / below the search value overlaps the resource's."""
    await expect(
        client,
        dated,
        "Observation",
        "date",
        {
            "gt2024-03-31": {"april", "period-spanning", "open-ended"},
            "lt2024-03-01": {"feb", "period-spanning", "year-2023", "far"},
            "gt2024": {"open-ended"},
            "lt2024": {"year-2023", "far"},
        },
    )


async def test_ge_and_le_also_take_the_contained(client: httpx.AsyncClient, dated: Seeded) -> None:
    """ge / le match as gt / lt do, and also what the search range contains."""
    await expect(
        client,
        dated,
        "Observation",
        "date",
        {
            "ge2024-03-15": {"day", "morning", "instant", "april", "period-spanning", "open-ended"},
            "le2024-03-10": {"feb", "period-spanning", "open-ended", "year-2023", "far"},
        },
    )


async def test_sa_and_eb_need_no_overlap(client: httpx.AsyncClient, dated: Seeded) -> None:
    """sa / eb match a resource range wholly after / before the search range: a Period that
    overlaps the value does not start after it, an open end never ends before."""
    await expect(
        client,
        dated,
        "Observation",
        "date",
        {
            "sa2024-03-12": {"day", "morning", "instant", "april"},
            "sa2024-03-01": {"day", "morning", "instant", "april", "period-in-march", "open-ended"},
            "eb2024-03-10": {"feb", "year-2023", "far"},
            "eb2024-04-30": {*ALL_2024, "year-2023", "far"},
        },
    )


async def test_and_makes_a_window(client: httpx.AsyncClient, dated: Seeded) -> None:
    """date=ge..&date=lt.. finds what overlaps March and nothing wholly outside it."""
    window = [("date", "ge2024-03-01"), ("date", "lt2024-04-01")]
    assert await dated.search(client, "Observation", window) == {
        "day",
        "morning",
        "instant",
        "period-in-march",
        "period-spanning",
        "open-ended",
    }


async def test_approximately(client: httpx.AsyncClient, dated: Seeded) -> None:
    """ap matches the dates near the value and not those years away."""
    found = await dated.search(client, "Observation", {"date": "ap2024-03-15"})
    assert {"day", "morning", "instant"} <= found
    assert "far" not in found and "undated" not in found


async def test_timezone_offsets_are_the_same_instant(client: httpx.AsyncClient) -> None:
    """A time with an offset and the same time in UTC are one instant, either way round."""
    data = await seed(
        client,
        {
            "utc": observation(effectiveDateTime="2024-06-01T02:00:00Z"),
            "hanoi": observation(effectiveDateTime="2024-06-01T09:00:00+07:00"),
            "later": observation(effectiveDateTime="2024-06-01T03:00:00Z"),
        },
    )
    both = {"utc", "hanoi"}
    assert await data.search(client, "Observation", {"date": "2024-06-01T09:00:00+07:00"}) == both
    assert await data.search(client, "Observation", {"date": "2024-06-01T02:00:00Z"}) == both
    assert await data.search(client, "Observation", {"date": "2024-05-31T21:00:00-05:00"}) == both
    assert await data.search(client, "Observation", {"date": "gt2024-06-01T02:00:00Z"}) == {"later"}


async def test_birthdate_at_each_precision(client: httpx.AsyncClient, born: Seeded) -> None:
    """A date (birthDate) is the whole day; coarser search values contain it."""
    cases = {
        "1985": True,
        "1985-04": True,
        "1985-04-12": True,
        "1985-04-13": False,
        "1986": False,
        "ge1985-04-12": True,
        "gt1985-04-12": False,
        "lt1985-04-12": False,
        "le1985-04-12": True,
        "sa1985-04-11": True,
        "eb1985-04-12": False,
        "ne1985": False,
        "ne1985-04-13": True,
    }
    await expect(
        client,
        born,
        "Patient",
        "birthdate",
        {value: {"born"} if hit else set() for value, hit in cases.items()},
    )


@pytest.fixture(scope="module")
async def born(client: httpx.AsyncClient) -> Seeded:
    """One patient born on 12 April 1985, and one with no birth date."""
    no_birth = person("Võ", "Thị", "Sáu")
    return await seed(
        client, {"born": person("Lê", "Văn", "Tám", birthDate="1985-04-12"), "unborn": no_birth}
    )


async def test_last_updated(client: httpx.AsyncClient) -> None:
    """_lastUpdated compares with meta.lastUpdated, which the server set at the write."""
    before = datetime.now(UTC) - timedelta(minutes=1)
    data = await seed(client, {"new": person("Lê", "Mới")})
    after = datetime.now(UTC) + timedelta(minutes=1)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    assert await data.search(client, "Patient", {"_lastUpdated": f"gt{before:{stamp}}"}) == {"new"}
    assert await data.search(client, "Patient", {"_lastUpdated": f"lt{before:{stamp}}"}) == set()
    assert await data.search(client, "Patient", {"_lastUpdated": f"lt{after:{stamp}}"}) == {"new"}


async def test_last_updated_by_day_around_midnight(app: Any) -> None:
    """A day in _lastUpdated (no time, so a day of the deployment's zone, UTC+7) holds a write
    stamped at its last millisecond and not one at the next midnight there (17:00 UTC): a hub
    whose clock is stopped at each."""
    async with another_hub(app) as hub, client_for(hub, "facility", facility="F-DATES") as client:
        assert hub.state.settings.utc_offset_minutes == 7 * 60
        tag = unique("t")
        hub.state.clock.set(datetime(2024, 6, 30, 16, 59, 59, 999_000, tzinfo=UTC))
        late = await create(client, tagged(person("Lê", "Muộn"), tag))
        hub.state.clock.set(datetime(2024, 6, 30, 17, tzinfo=UTC))
        early = await create(client, tagged(person("Lê", "Sớm"), tag))
        written = Seeded(tag, {"late": late, "early": early})
        await expect(
            client,
            written,
            "Patient",
            "_lastUpdated",
            {
                "eq2024-06-30": {"late"},
                "le2024-06-30": {"late"},
                "lt2024-07-01": {"late"},
                "eq2024-07-01": {"early"},
                "ge2024-07-01": {"early"},
                "gt2024-06-30": {"early"},
                "ge2024-06-30": {"late", "early"},
                "eq2024-06-30T16:59:59Z": {"late"},
                "eq2024-06-30T23:59:59+07:00": {"late"},
                "eq2024-06-30T17:00:00Z": {"early"},
            },
        )


async def test_invalid_date_is_400_naming_the_parameter(client: httpx.AsyncClient) -> None:
    """A value that is not a date is refused with an OperationOutcome naming the parameter."""
    for value in [
        "2024-13-01",
        "2024-02-30",
        "yesterday",
        "gt",
        "2024-3-5",
        "2024-03-15T25:00:00Z",
    ]:
        response = await get(client, "Observation", {"date": value})
        assert_outcome(response, 400, "date")


async def test_invalid_prefixed_date_on_birthdate(client: httpx.AsyncClient) -> None:
    """A wrong date after a valid prefix is refused too, naming birthdate."""
    response = await get(client, "Patient", {"birthdate": "ge1985-99"})
    assert_outcome(response, 400, "birthdate")


async def test_dates_at_the_ends_of_the_calendar_are_answered(client: httpx.AsyncClient) -> None:
    """Dates whose precision reaches past year 9999, or whose offset moves them before year 1,
    are searched or refused with 400, never a server error."""
    answered = {
        "9999": 200,
        "9999-12": 200,
        "le9999-12-31T23:59:59.999+14:00": 200,
        "0001-01-01T00:00:00+14:00": 400,
    }
    for value, status in answered.items():
        response = await client.get("/fhir/Observation", params={"date": value, "_count": "1"})
        assert response.status_code == status, (value, response.text)


def test_a_day_without_a_zone_is_the_deployments_day(settings: Settings) -> None:
    """A date without a zone, stored or searched for, is a day of the deployment's zone: the
    app sets it from EHRHUB_UTC_OFFSET_MINUTES (a process serves one deployment)."""
    assert settings.utc_offset_minutes == 7 * 60
    day = date_range("2024-06-30")
    assert (day.low, day.high) == ("20240629170000000", "20240630165959999")
    assert date_range("2024-06-30T08:00:00Z").low == "20240630080000000"
    try:
        create_app(settings.model_copy(update={"utc_offset_minutes": 0}))
        assert date_range("2024-06-30").low == "20240630000000000"
        create_app(settings.model_copy(update={"utc_offset_minutes": -300}))
        assert date_range("2024-06-30").low == "20240630050000000"
    finally:
        create_app(settings)
    assert date_range("2024-06-30").low == "20240629170000000"
