"""The patient-privacy Consents the simulated people give: about two in five let every facility
see their records for treatment, and about one in twenty refuses their mental-health and HIV
records to other facilities, even in an emergency.

Each Consent is written by a facility holding the person's records, with that facility's own
client, about its own Patient record (found by citizen ID); it speaks for the whole person
(docs/consent.md). The draws are seeded and each Consent is created unless its identifier is
already held, so a second run writes nothing new.
"""

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from adapters.base import CCCD_SYSTEM, FACILITY_SYSTEM, Resource, identifier_query
from adapters.fhir.attribution import source
from adapters.simulate.facilities import SimFacility
from adapters.simulate.population import Visit

PERMIT_SHARE = 0.40
DENY_SHARE = 0.05
# The kinds of Consent a person gives: "share" permits every facility for treatment,
# "sensitive" denies records labelled mental health or HIV, even in an emergency.
SHARE, SENSITIVE = "share", "sensitive"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
PRIVACY_CONSENT = "59284-0"  # LOINC: Patient Consent
SENSITIVE_LABELS = ("PSY", "HIV")
# Entries per Bundle the demo sends: Patient look-ups (batch) or Consents (transaction).
BUNDLE_SIZE = 200
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Choice:
    """One Consent a person gives: what kind, at which facility holding their records, when."""

    cccd: str
    kind: str
    facility: SimFacility
    given: date


@dataclass
class Written:
    """How writing the demo's Consents went."""

    created: int = 0
    held: int = 0  # already in the hub from an earlier run
    missing: int = 0  # the facility holds no Patient with that citizen ID (its sync failed)


def choices(made: Sequence[Visit], seed: int) -> list[Choice]:
    """Return the Consents the people of these visits give, drawn from the seed per person:
    each at one of the facilities they visited, on their first visit there."""
    first: dict[str, dict[str, Visit]] = {}
    for v in made:
        seen = first.setdefault(v.person.cccd, {})
        if v.facility.code not in seen or v.start < seen[v.facility.code].start:
            seen[v.facility.code] = v
    found = []
    for cccd in sorted(first):
        rng = random.Random(f"ehrhub-simulate/consent/{seed}/{cccd}")
        visit = first[cccd][rng.choice(sorted(first[cccd]))]
        for kind, share in ((SHARE, PERMIT_SHARE), (SENSITIVE, DENY_SHARE)):
            if rng.random() < share:
                found.append(Choice(cccd, kind, visit.facility, visit.start.date()))
    return found


def _purposes(*codes: str) -> list[Resource]:
    return [{"system": PURPOSE_SYSTEM, "code": code} for code in codes]


def consent(choice: Choice, patient_id: str) -> Resource:
    """Return the Consent of a choice about the facility's Patient record."""
    if choice.kind == SHARE:
        provision = {"type": "permit", "purpose": _purposes("TREAT", "ETREAT")}
    else:
        # Listing ETREAT makes the deny stand when a clinician breaks the glass.
        labels = [{"system": ACT_CODE_SYSTEM, "code": code} for code in SENSITIVE_LABELS]
        provision = {
            "type": "deny",
            "purpose": _purposes("TREAT", "ETREAT"),
            "securityLabel": labels,
        }
    facility = choice.facility.facility
    return {
        "resourceType": "Consent",
        "meta": {
            "source": source(facility),
            "tag": [{"system": FACILITY_SYSTEM, "code": facility.code}],
        },
        "identifier": [consent_identifier(choice)],
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": PRIVACY_CONSENT}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": choice.given.isoformat(),
        "provision": provision,
    }


def consent_identifier(choice: Choice) -> Resource:
    """Return the identifier the facility gives a Consent: its own, per person and kind."""
    return {
        "system": choice.facility.facility.system("consent"),
        "value": f"{choice.cccd}-{choice.kind}",
    }


def _query(identifier: Resource) -> str:
    return identifier_query(identifier["system"], identifier["value"])


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BUNDLE_SIZE] for i in range(0, len(items), BUNDLE_SIZE)]


def _post(client: httpx.Client, bundle: Resource, headers: Mapping[str, str]) -> list[Resource]:
    response = client.post("", json=bundle, headers={"content-type": FHIR_JSON, **headers})
    response.raise_for_status()
    entries: list[Resource] = response.json().get("entry", [])
    return entries


def patient_ids(
    client: httpx.Client, cccds: Sequence[str], headers: Mapping[str, str]
) -> dict[str, str]:
    """Return the id of the Patient record a facility holds for each citizen ID, as its own
    token finds them (a batch of searches): a facility's token finds only its own records."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(cccds))):
        entries = [
            {"request": {"method": "GET", "url": f"Patient?{identifier_query(CCCD_SYSTEM, c)}"}}
            for c in chunk
        ]
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
        for cccd, answer in zip(chunk, _post(client, bundle, headers), strict=True):
            hits = answer.get("resource", {}).get("entry", [])
            if hits:
                found[cccd] = str(hits[0]["resource"]["id"])
    return found


def write_consents(
    client: httpx.Client,
    chosen: Sequence[Choice],
    headers_of: Callable[[str], Mapping[str, str]],
) -> Written:
    """Write each facility's Consents with its own headers (`headers_of(code)`), in
    transactions of conditional creates on their identifiers."""
    written = Written()
    by_facility: dict[str, list[Choice]] = {}
    for c in chosen:
        by_facility.setdefault(c.facility.code, []).append(c)
    for code, mine in sorted(by_facility.items()):
        headers = headers_of(code)
        ids = patient_ids(client, [c.cccd for c in mine], headers)
        written.missing += sum(c.cccd not in ids for c in mine)
        for chunk in _chunks([c for c in mine if c.cccd in ids]):
            entries = [
                {
                    "resource": consent(c, ids[c.cccd]),
                    "request": {
                        "method": "POST",
                        "url": "Consent",
                        "ifNoneExist": _query(consent_identifier(c)),
                    },
                }
                for c in chunk
            ]
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            statuses = [e["response"]["status"] for e in _post(client, bundle, headers)]
            written.created += sum(s.startswith("201") for s in statuses)
            written.held += sum(s.startswith("200") for s in statuses)
    return written
