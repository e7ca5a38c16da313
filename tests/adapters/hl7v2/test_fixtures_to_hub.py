"""Every real HL7 v2 fixture message: a Bundle the hub accepts, or a clear Rejection."""

import random
from collections import Counter
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from support import FHIR_JSON, FIXTURES, FacilityClients, unique

from adapters.base import Facility, Rejection
from adapters.hl7v2 import parse

MESSAGES = sorted((FIXTURES / "hl7v2").glob("*.hl7"))
MAPPED_TYPES = {
    "ADT^A01": 5,
    "ADT^A02": 2,
    "ADT^A03": 2,
    "ADT^A04": 5,
    "ADT^A05": 2,
    "ADT^A08": 2,
    "ADT^A11": 2,
    "ADT^A13": 2,
    "ADT^A28": 2,
    "ADT^A31": 2,
    "ADT^A40": 2,
    "MDM^T01": 2,
    "MDM^T02": 3,
    "MDM^T05": 2,
    "MDM^T06": 2,
    "MDM^T09": 2,
    "MDM^T10": 2,
    "ORU^R01": 5,
    "RDE^O11": 2,
    "RDE^O25": 2,
    "RDS^O13": 2,
    "SIU^S12": 3,
    "SIU^S13": 2,
    "SIU^S14": 2,
    "SIU^S15": 2,
    "SIU^S16": 2,
    "SIU^S17": 2,
    "SIU^S26": 2,
    "VXU^V04": 4,
}


def message_type(path: Path) -> str:
    """Return MSH-9.1^MSH-9.2 of a fixture, read plainly, to check the parser against."""
    msh = path.read_text(encoding="utf-8-sig").splitlines()[0].split("|")
    return "^".join(msh[8].split("^")[:2])


def outputs(facility: Facility | None = None) -> list[tuple[Path, Any]]:
    """Return every fixture's outputs, for the facility given or one of this test's own."""
    facility = facility or Facility(unique("hl7-"), "Bệnh viện thử nghiệm")
    return [
        (p, o) for p in MESSAGES for o in parse(p.read_text(encoding="utf-8"), facility, p.name)
    ]


def test_all_139_messages_are_there() -> None:
    assert len(MESSAGES) == 139


def test_every_message_gives_one_bundle_or_rejection() -> None:
    found = outputs()
    assert [p for p, _ in found] == MESSAGES
    mapped = Counter(message_type(p) for p, o in found if not isinstance(o, Rejection))
    rejected = Counter(message_type(p) for p, o in found if isinstance(o, Rejection))
    summary = f"mapped {dict(sorted(mapped.items()))}; rejected {dict(sorted(rejected.items()))}"
    assert dict(mapped) == MAPPED_TYPES, summary
    assert sum(mapped.values()) == 71 and sum(rejected.values()) == 68, summary
    for path, output in found:
        if isinstance(output, Rejection):
            kind = message_type(path)
            assert output.reason.startswith(f"{kind} is not mapped; "), (path.name, output)
            assert path.name in output.source


async def test_every_bundle_is_accepted_by_the_hub(facility_client: FacilityClients) -> None:
    facility = Facility(unique("hl7-"), "Bệnh viện thử nghiệm")
    client = await facility_client(facility.code)
    refused = []
    for path, output in outputs(facility):
        if isinstance(output, Rejection):
            continue
        response = await client.post("/fhir", json=output, headers=FHIR_JSON)
        if response.status_code != 200:
            refused.append((path.name, response.status_code, response.text[:300]))
            continue
        statuses = [e["response"]["status"] for e in response.json()["entry"]]
        if not all(s.startswith("2") for s in statuses):
            refused.append((path.name, 200, statuses))
    assert not refused, refused


def test_damaged_messages_never_raise_and_still_give_valid_fhir() -> None:
    facility = Facility(unique("hl7-"))
    rnd = random.Random(4)
    texts = [p.read_text(encoding="utf-8") for p in MESSAGES]
    noise = "|^~\\&\n\r0123456789AZ-+. "
    for _ in range(400):
        chars = list(rnd.choice(texts))
        for _ in range(rnd.randint(1, 30)):
            at = rnd.randrange(len(chars))
            if rnd.random() < 0.5:
                chars[at] = rnd.choice(noise)
            else:
                del chars[at]
        for output in parse("".join(chars), facility, "damaged.hl7"):
            if isinstance(output, Rejection):
                assert output.reason
                continue
            for entry in output["entry"]:
                resource = entry["resource"]
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
