"""Helpers for tests: fixtures on disk and valid resources to start from."""

import uuid
from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).parent / "fixtures"
FHIR_JSON = {"content-type": "application/fhir+json"}


def fixture_json(*parts: str) -> Any:
    """Load a JSON fixture."""
    return orjson.loads((FIXTURES.joinpath(*parts)).read_bytes())


def unique(prefix: str = "") -> str:
    """Return a value no other test uses, for identifiers."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def patient(identifier: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return a valid Patient, with a unique identifier unless one is given."""
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": "https://moh.gov.vn/fhir/sid/cccd", "value": identifier or unique()}
        ],
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1985-04-12",
        **extra,
    }


def observation(subject: str, **extra: Any) -> dict[str, Any]:
    """Return a valid heart-rate Observation about `subject`."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
        **extra,
    }
