"""String search: starts-with ignoring case and accents, :exact, :contains, names and addresses.

https://hl7.org/fhir/R4/search.html#string
"""

import httpx
import pytest
from search.helpers import Seeded, expect, person, seed


@pytest.fixture(scope="module")
async def named(client: httpx.AsyncClient) -> Seeded:
    """Patients with Vietnamese and English names and addresses."""
    return await seed(
        client,
        {
            "nguyen": person(
                "Nguyễn", "Văn", "An", address=[{"city": "Hà Nội", "line": ["15 Tràng Tiền"]}]
            ),
            "dang": person("Đặng", "Thị", "Bích"),
            "tran": person("Trần", "Nguyên"),
            "smith": person(
                "Smith",
                "Anna",
                address=[
                    {"line": ["12 Lê Lợi"], "city": "Hồ Chí Minh", "district": "Quận 1"},
                ],
            ),
            "text-only": {
                "resourceType": "Patient",
                "name": [{"text": "Phạm Minh Chính"}],
            },
        },
    )


async def test_starts_with_ignoring_case_and_accents(
    client: httpx.AsyncClient, named: Seeded
) -> None:
    """A string matches a field that equals or starts with the value, both normalised for case
    and accents (đ included)."""
    await expect(
        client,
        named,
        "Patient",
        "family",
        {
            "nguyen": {"nguyen"},
            "NGUYỄN": {"nguyen"},
            "Nguy": {"nguyen"},
            "dang": {"dang"},
            "đặng": {"dang"},
            "ĐẶNG": {"dang"},
        },
    )


async def test_no_match_in_the_middle(client: httpx.AsyncClient, named: Seeded) -> None:
    """Without :contains, a value inside a field (not at its start) is no match."""
    await expect(
        client,
        named,
        "Patient",
        "name",
        {"guyen": set(), "chinh": set(), "nguyen van": set(), "ang": set()},
    )


async def test_name_parts(client: httpx.AsyncClient, named: Seeded) -> None:
    """given searches given names, name every part (text included); values OR with commas."""
    await expect(
        client,
        named,
        "Patient",
        "given",
        {"van": {"nguyen"}, "an": {"nguyen", "smith"}, "nguyen": {"tran"}},
    )
    await expect(
        client,
        named,
        "Patient",
        "name",
        {
            "nguyen": {"nguyen", "tran"},
            "bich": {"dang"},
            "pham minh": {"text-only"},
            "nguyen,dang": {"nguyen", "tran", "dang"},
        },
    )


async def test_exact_is_whole_string_with_case_and_accents(
    client: httpx.AsyncClient, named: Seeded
) -> None:
    """:exact matches the whole string, casing and combining characters included."""
    await expect(
        client,
        named,
        "Patient",
        "family:exact",
        {
            "Nguyễn": {"nguyen"},
            "nguyễn": set(),
            "Nguyen": set(),
            "Nguy": set(),
            "Đặng": {"dang"},
        },
    )


async def test_contains_matches_anywhere(client: httpx.AsyncClient, named: Seeded) -> None:
    """:contains matches the value anywhere in the field."""
    await expect(client, named, "Patient", "family:contains", {"guy": {"nguyen"}, "mit": {"smith"}})
    await expect(
        client,
        named,
        "Patient",
        "name:contains",
        {"inh": {"text-only"}, "nguy": {"nguyen", "tran"}},
    )
    await expect(client, named, "Patient", "address:contains", {"loi": {"smith"}})


async def test_address_parts(client: httpx.AsyncClient, named: Seeded) -> None:
    """address searches any string part of an Address; address-city only the city."""
    await expect(
        client,
        named,
        "Patient",
        "address-city",
        {"ha noi": {"nguyen"}, "Hồ Chí": {"smith"}, "minh": set(), "quan": set()},
    )
    await expect(
        client,
        named,
        "Patient",
        "address",
        {"12 le": {"smith"}, "quan 1": {"smith"}, "hà": {"nguyen"}, "trang tien": set()},
    )


async def test_repeated_parameters_are_and(client: httpx.AsyncClient, named: Seeded) -> None:
    """Repeating a parameter ANDs its values: both must match."""
    both = [("name", "nguyen"), ("given", "van")]
    assert await named.search(client, "Patient", both) == {"nguyen"}
    neither = [("family", "nguyen"), ("family", "dang")]
    assert await named.search(client, "Patient", neither) == set()


@pytest.fixture(scope="module")
async def commas(client: httpx.AsyncClient) -> Seeded:
    """Organizations whose names hold a comma."""
    return await seed(
        client,
        {
            "with-comma": {"resourceType": "Organization", "name": "Khoa Nội, Tầng 2"},
            "starts-tang": {"resourceType": "Organization", "name": "Tầng 2 Khoa Ngoại"},
        },
    )


async def test_escaped_comma_is_part_of_the_value(
    client: httpx.AsyncClient, commas: Seeded
) -> None:
    """`\\,` is a literal comma; an unescaped comma separates OR-ed values."""
    assert await commas.search(client, "Organization", {"name": "khoa noi\\, tang"}) == {
        "with-comma"
    }
    assert await commas.search(client, "Organization", {"name": "khoa noi,tang"}) == {
        "with-comma",
        "starts-tang",
    }


async def test_long_values_match_in_full(client: httpx.AsyncClient) -> None:
    """A long name matches by any prefix, however long, and not by a longer wrong value."""
    long_name = "Công ty Trách nhiệm Hữu hạn Một thành viên Bệnh viện Đa khoa Quốc tế Sài Gòn"
    data = await seed(
        client,
        {
            "long": {"resourceType": "Organization", "name": long_name},
            "other": {"resourceType": "Organization", "name": long_name[:70] + " Hà Nội"},
        },
    )
    assert await data.search(client, "Organization", {"name": long_name}) == {"long"}
    assert await data.search(client, "Organization", {"name": long_name[:70]}) == {
        "long",
        "other",
    }
    assert await data.search(client, "Organization", {"name:exact": long_name}) == {"long"}
    assert await data.search(client, "Organization", {"name": long_name + " 2"}) == set()
