"""Token search: codes with and without systems, :not, :text, :of-type, booleans and codes.

https://hl7.org/fhir/R4/search.html#token
"""

import httpx
import pytest
from search.helpers import CCCD, LOINC, Seeded, expect, observation, person, seed
from support import unique

SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN = "urn:oid:1.2.3.4.5"


@pytest.fixture(scope="module")
async def coded(client: httpx.AsyncClient) -> Seeded:
    """Observations whose codes differ by system, presence of a system, display and text."""
    return await seed(
        client,
        {
            "loinc-hr": observation(
                code={
                    "coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}],
                    "text": "Nhịp tim",
                }
            ),
            "snomed-same-code": observation(
                code={"coding": [{"system": SNOMED, "code": "8867-4"}]}
            ),
            "no-system": observation(code={"coding": [{"code": "8867-4"}]}),
            "bp": observation(
                code={
                    "coding": [
                        {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}
                    ]
                }
            ),
            "text-only": observation(code={"text": "Đường huyết lúc đói"}),
        },
    )


async def test_code_without_system_matches_any_system(
    client: httpx.AsyncClient, coded: Seeded
) -> None:
    """[code] matches Coding.code whatever the system; OR-ed with commas; no partial codes."""
    await expect(
        client,
        coded,
        "Observation",
        "code",
        {
            "8867-4": {"loinc-hr", "snomed-same-code", "no-system"},
            "8867-4,85354-9": {"loinc-hr", "snomed-same-code", "no-system", "bp"},
            "8867": set(),
        },
    )


async def test_system_forms(client: httpx.AsyncClient, coded: Seeded) -> None:
    """system|code needs both; |code needs no system; system| takes any code of the system."""
    await expect(
        client,
        coded,
        "Observation",
        "code",
        {
            f"{LOINC}|8867-4": {"loinc-hr"},
            "|8867-4": {"no-system"},
            f"{LOINC}|": {"loinc-hr", "bp"},
            f"{SNOMED}|8867-4,{LOINC}|85354-9": {"snomed-same-code", "bp"},
            f"{LOINC}|8867-4-extra": set(),
        },
    )


async def test_not_includes_resources_without_the_code(
    client: httpx.AsyncClient, coded: Seeded
) -> None:
    """:not reverses the match and includes resources that have no coding at all."""
    await expect(
        client,
        coded,
        "Observation",
        "code:not",
        {
            f"{LOINC}|8867-4": {"snomed-same-code", "no-system", "bp", "text-only"},
            "8867-4": {"bp", "text-only"},
            f"{LOINC}|": {"snomed-same-code", "no-system", "text-only"},
            "8867-4,85354-9": {"text-only"},
        },
    )


async def test_text_searches_display_and_text(client: httpx.AsyncClient, coded: Seeded) -> None:
    """:text matches the start of Coding.display or CodeableConcept.text, ignoring case and
    accents; it never matches the code itself."""
    await expect(
        client,
        coded,
        "Observation",
        "code:text",
        {
            "heart": {"loinc-hr"},
            "HEART RA": {"loinc-hr"},
            "nhip": {"loinc-hr"},
            "Nhịp tim": {"loinc-hr"},
            "duong huyet": {"text-only"},
            "heart,blood": {"loinc-hr", "bp"},
            "glucose": set(),
            "8867-4": set(),
        },
    )


@pytest.fixture(scope="module")
async def identified(client: httpx.AsyncClient) -> Seeded:
    """Patients with typed identifiers, booleans and codes set or left out."""
    national = {
        "system": CCCD,
        "value": "079085001234",
        "type": {"coding": [{"system": V2_0203, "code": "NI"}], "text": "Căn cước công dân"},
    }
    record = {
        "system": MRN,
        "value": "BN-0042",
        "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
    }
    return await seed(
        client,
        {
            "typed": {**person("Lý", "Thường"), "identifier": [national, record]},
            "other-record": {
                **person("Lý", "Kiệt"),
                "identifier": [{"system": "urn:oid:9.9.9", "value": "BN-0042"}],
                "active": False,
                "gender": "female",
            },
            "active-male": person("Hồ", "Quý", active=True, gender="male"),
            "no-gender": person("Mạc", "Đăng"),
        },
    )


async def test_identifier(client: httpx.AsyncClient, identified: Seeded) -> None:
    """Identifiers match by value, by system|value, by |value (no system) and by system|."""
    await expect(
        client,
        identified,
        "Patient",
        "identifier",
        {
            "BN-0042": {"typed", "other-record"},
            f"{MRN}|BN-0042": {"typed"},
            f"{CCCD}|079085001234": {"typed"},
            f"{CCCD}|BN-0042": set(),
            "|BN-0042": set(),
            f"{MRN}|": {"typed"},
        },
    )


async def test_identifier_of_type(client: httpx.AsyncClient, identified: Seeded) -> None:
    """:of-type matches type-system|type-code|value against Identifier.type and value."""
    await expect(
        client,
        identified,
        "Patient",
        "identifier:of-type",
        {
            f"{V2_0203}|MR|BN-0042": {"typed"},
            f"{V2_0203}|NI|079085001234": {"typed"},
            f"{V2_0203}|NI|BN-0042": set(),
            f"{V2_0203}|MR|079085001234": set(),
        },
    )


async def test_of_type_needs_three_parts(client: httpx.AsyncClient, identified: Seeded) -> None:
    """:of-type takes type-system|type-code|value; anything else is an error."""
    response = await client.get(
        "/fhir/Patient", params={"identifier:of-type": f"{V2_0203}|MR", "_tag": identified.tag}
    )
    assert response.status_code == 400, response.text


async def test_identifier_text_searches_type_text(
    client: httpx.AsyncClient, identified: Seeded
) -> None:
    """:text on an identifier searches Identifier.type.text."""
    found = await identified.search(client, "Patient", {"identifier:text": "can cuoc"})
    assert found == {"typed"}


async def test_booleans(client: httpx.AsyncClient, identified: Seeded) -> None:
    """A boolean is a token true or false; :not includes resources without the element."""
    await expect(
        client,
        identified,
        "Patient",
        "active",
        {"true": {"active-male"}, "false": {"other-record"}},
    )
    not_active = {"typed", "other-record", "no-gender"}
    await expect(client, identified, "Patient", "active:not", {"true": not_active})


async def test_codes(client: httpx.AsyncClient, identified: Seeded) -> None:
    """A code matches exactly and case-sensitively; :not includes resources without one."""
    await expect(
        client,
        identified,
        "Patient",
        "gender",
        {"male": {"active-male"}, "female,male": {"active-male", "other-record"}, "MALE": set()},
    )
    not_male = {"typed", "other-record", "no-gender"}
    await expect(client, identified, "Patient", "gender:not", {"male": not_male})


async def test_id_is_a_token(client: httpx.AsyncClient, identified: Seeded) -> None:
    """_id matches the logical ids given, OR-ed with commas."""
    wanted = f"{identified.ids['typed']},{identified.ids['no-gender']}"
    assert await identified.search(client, "Patient", {"_id": wanted}) == {"typed", "no-gender"}


async def test_escaped_comma_in_a_token(client: httpx.AsyncClient) -> None:
    """A comma escaped with a backslash is part of an identifier value, not an OR."""
    data = await seed(
        client,
        {
            "comma": {**person("Phẩy"), "identifier": [{"system": MRN, "value": "A,B"}]},
            "a": {**person("Phẩy"), "identifier": [{"system": MRN, "value": "A"}]},
        },
    )
    assert await data.search(client, "Patient", {"identifier": f"{MRN}|A\\,B"}) == {"comma"}
    assert await data.search(client, "Patient", {"identifier": f"{MRN}|A,B"}) == {"a"}


async def test_telecom_system_parameters(client: httpx.AsyncClient) -> None:
    """phone and email match only contact points of their system; telecom matches any."""
    number = unique()[:10]
    data = await seed(
        client,
        {
            "phone": person("Gọi", telecom=[{"system": "phone", "value": number}]),
            "email": person("Thư", telecom=[{"system": "email", "value": number}]),
            "fax": person("Fax", telecom=[{"system": "fax", "value": number}]),
        },
    )
    await expect(client, data, "Patient", "phone", {number: {"phone"}})
    await expect(client, data, "Patient", "email", {number: {"email"}})
    await expect(client, data, "Patient", "telecom", {number: {"phone", "email", "fax"}})


async def test_combo_and_component_codes(client: httpx.AsyncClient) -> None:
    """combo-code matches Observation.code or a component's code; code and component-code
    only their own."""
    panel = observation(
        code={"coding": [{"system": LOINC, "code": "85354-9"}]},
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mmHg"},
            }
        ],
    )
    data = await seed(client, {"panel": panel, "heart-rate": observation()})
    await expect(
        client,
        data,
        "Observation",
        "combo-code",
        {"8480-6": {"panel"}, "85354-9": {"panel"}, "8867-4": {"heart-rate"}},
    )
    await expect(client, data, "Observation", "code", {"8480-6": set(), "85354-9": {"panel"}})
    await expect(client, data, "Observation", "component-code", {"8480-6": {"panel"}})
    await expect(client, data, "Observation", "value-quantity", {"120": set()})
    await expect(client, data, "Observation", "component-value-quantity", {"120": {"panel"}})
    await expect(client, data, "Observation", "combo-value-quantity", {"120||mmHg": {"panel"}})
