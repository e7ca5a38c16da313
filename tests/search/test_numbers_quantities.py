"""Number and quantity search: prefixes, the implicit precision of the value, units.

A number without a prefix stands for the range its precision implies: 72 is [71.5, 72.5),
100.0 is [99.95, 100.05); lt, le, gt and ge compare with the exact value given.
https://hl7.org/fhir/R4/search.html#number  https://hl7.org/fhir/R4/search.html#quantity
"""

from typing import Any

import httpx
import pytest
from search.helpers import UCUM, Seeded, assert_outcome, expect, get, observation, seed


def quantity(value: float, unit: str, system: str | None = UCUM, code: str | None = None) -> Any:
    """Return an Observation whose valueQuantity is given."""
    value_quantity: dict[str, Any] = {"value": value, "unit": unit}
    if system:
        value_quantity |= {"system": system, "code": code or unit}
    return observation(valueQuantity=value_quantity)


@pytest.fixture(scope="module")
async def measured(client: httpx.AsyncClient) -> Seeded:
    """Heart rates near 72 and 100, and 5.4 mg in three unit spellings."""
    return await seed(
        client,
        {
            "hr-72.4": quantity(72.4, "/min"),
            "hr-72.6": quantity(72.6, "/min"),
            "hr-100": quantity(100, "/min"),
            "mg-ucum": quantity(5.4, "mg"),
            "mg-other-system": quantity(5.4, "mg", system="http://example.org/units"),
            "mg-unit-only": quantity(5.4, "mg", system=None),
            "g-ucum": quantity(5.4, "g"),
            "spo2": quantity(97, "%"),
            "no-value": observation(valueString="không đo được"),
        },
    )


async def test_value_without_prefix_uses_its_precision(
    client: httpx.AsyncClient, measured: Seeded
) -> None:
    """A value matches within the range its precision implies: 72 is [71.5, 72.5)."""
    await expect(
        client,
        measured,
        "Observation",
        "value-quantity",
        {
            "72": {"hr-72.4"},
            "72.4": {"hr-72.4"},
            "72.40": {"hr-72.4"},
            "73": {"hr-72.6"},
            "100": {"hr-100"},
            "100.0": {"hr-100"},
            "99.99": set(),
            "eq72||/min": {"hr-72.4"},
            "72,100": {"hr-72.4", "hr-100"},
        },
    )


async def test_prefixes_compare_with_the_exact_value(
    client: httpx.AsyncClient, measured: Seeded
) -> None:
    """gt, ge, lt and le compare with the value as given; ne is outside its precision range;
    ap is within about 10%."""
    await expect(
        client,
        measured,
        "Observation",
        "value-quantity",
        {
            "gt72.4||/min": {"hr-72.6", "hr-100"},
            "ge72.4||/min": {"hr-72.4", "hr-72.6", "hr-100"},
            "lt72.6||/min": {"hr-72.4"},
            "le72.6||/min": {"hr-72.4", "hr-72.6"},
            "ne72||/min": {"hr-72.6", "hr-100"},
            "gt72": {"hr-72.4", "hr-72.6", "hr-100", "spo2"},
            "lt6": {"mg-ucum", "mg-other-system", "mg-unit-only", "g-ucum"},
            "ap100": {"hr-100", "spo2"},
            "ap72||/min": {"hr-72.4", "hr-72.6"},
        },
    )


async def test_system_and_code(client: httpx.AsyncClient, measured: Seeded) -> None:
    """number|system|code needs both to match; number||code matches the code or the unit."""
    await expect(
        client,
        measured,
        "Observation",
        "value-quantity",
        {
            f"5.4|{UCUM}|mg": {"mg-ucum"},
            "5.4||mg": {"mg-ucum", "mg-other-system", "mg-unit-only"},
            "5.4": {"mg-ucum", "mg-other-system", "mg-unit-only", "g-ucum"},
            f"5.4|{UCUM}|g": {"g-ucum"},
            f"5.4|{UCUM}|kg": set(),
            f"gt5|{UCUM}|mg": {"mg-ucum"},
            f"lt5|{UCUM}|mg": set(),
            "97||%": {"spo2"},
            f"gt90|{UCUM}|%": {"spo2"},
            "lt100||%": {"spo2"},
        },
    )


async def test_invalid_quantity_is_400(client: httpx.AsyncClient) -> None:
    """A value that is not a quantity is refused, naming the parameter."""
    for value in ["abc", "5.4|mg", "gtx", "1,2,x", "NaN", "Infinity"]:
        response = await get(client, "Observation", {"value-quantity": value})
        assert_outcome(response, 400, "value-quantity")


@pytest.fixture(scope="module")
async def factors(client: httpx.AsyncClient) -> Seeded:
    """ChargeItems with a decimal factorOverride, a number search parameter."""

    def charge(factor: float | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "resourceType": "ChargeItem",
            "status": "billable",
            "code": {"text": "Khám bệnh"},
            "subject": {"reference": "Patient/factor-test"},
        }
        return item | ({"factorOverride": factor} if factor is not None else {})

    return await seed(
        client,
        {"0.8": charge(0.8), "0.84": charge(0.84), "0.86": charge(0.86), "1.2": charge(1.2)},
    )


async def test_number(client: httpx.AsyncClient, factors: Seeded) -> None:
    """A number matches within the value's precision (0.8 is [0.75, 0.85), 1 is [0.5, 1.5));
    prefixes compare with the exact value."""
    await expect(
        client,
        factors,
        "ChargeItem",
        "factor-override",
        {
            "0.8": {"0.8", "0.84"},
            "0.80": {"0.8"},
            "1": {"0.8", "0.84", "0.86", "1.2"},
            "1.0": set(),
            "1.2": {"1.2"},
            "gt0.8": {"0.84", "0.86", "1.2"},
            "ge0.84": {"0.84", "0.86", "1.2"},
            "lt1": {"0.8", "0.84", "0.86"},
            "le0.84": {"0.8", "0.84"},
            "ne0.8": {"0.86", "1.2"},
            "0.80,1.2": {"0.8", "1.2"},
        },
    )
