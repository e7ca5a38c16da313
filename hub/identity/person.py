"""National identifiers of Patient records: what the person resolver (hub/access/persons.py)
joins records by.
"""

from hub.search.extract import TOKEN, Token, values
from hub.search.registry import registry
from hub.store.resources import Stored


def national_id_key(system: str, value: str) -> str:
    """Return the search key of a Patient carrying this national identifier."""
    return f"Patient.identifier{TOKEN}{value}|{system}"


def national_ids(system: str, patient: Stored) -> list[str]:
    """Return the patient's values of the national identifier `system`."""
    param = registry().params("Patient")["identifier"]
    return [
        t.code
        for t in values(patient.doc, param)
        if isinstance(t, Token) and t.system == system and t.code
    ]
