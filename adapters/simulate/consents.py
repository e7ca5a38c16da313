"""The patient-privacy Consents the simulated people give: about two in five let every facility
see their records for treatment, and about one in twenty refuses their mental-health and HIV
records to other facilities, even in an emergency.

A Consent about records other facilities hold comes from the person (docs/consent.md), so each
person writes their own: the demo's admin makes the person a login (role patient, bound to their
citizen ID) through `POST /admin/clients`, and with its token the person finds one of their own
Patient records and writes their Consents about it, claiming no facility. The draws are seeded
and each Consent is a conditional create on a person-level identifier, so a second run writes
nothing new.
"""

import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from adapters.base import CCCD_SYSTEM, Resource, identifier_query
from adapters.simulate.population import Visit
from adapters.sync.credentials import Credentials

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
# The person's own identifier of a Consent: no facility's, since no facility writes it.
CONSENT_SYSTEM = "urn:ehrhub:demo:consent"
# Each run of `ehrhub demo` revokes the identities of this name that the previous run made.
DEMO_NAME = "demo"
# Each person costs the hub two argon2 computations (hashing their login's secret, checking it
# for their token), about 0.5 s on 2 busy cores: a few people at a time use the cores a hub has.
PEOPLE_AT_ONCE = 4
PROGRESS_EVERY = 25
FHIR_JSON = "application/fhir+json"


class ConsentRefused(Exception):
    """The hub refused a request of a person's consent: the request and the hub's answer."""


@dataclass(frozen=True)
class Choice:
    """One Consent a person gives: what kind, and when."""

    cccd: str
    kind: str
    given: date


@dataclass
class Written:
    """How writing the demo's Consents went."""

    people: int = 0  # logins made, one per person who consents
    created: int = 0
    held: int = 0  # already in the hub from an earlier run
    missing: int = 0  # the person's login finds no Patient record (their facilities' syncs failed)
    seconds: float = 0.0

    def add(self, other: "Written") -> None:
        """Count another person's writing in."""
        self.people += other.people
        self.created += other.created
        self.held += other.held
        self.missing += other.missing


def choices(made: Sequence[Visit], seed: int) -> list[Choice]:
    """Return the Consents the people of these visits give, drawn from the seed per person,
    each dated their first visit to one of the facilities they visited (also drawn)."""
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
                found.append(Choice(cccd, kind, visit.start.date()))
    return found


def _purposes(*codes: str) -> list[Resource]:
    return [{"system": PURPOSE_SYSTEM, "code": code} for code in codes]


def consent(choice: Choice, patient_id: str) -> Resource:
    """Return the Consent of a choice about one of the person's Patient records; it claims no
    facility (no meta.tag or meta.source), since the person writes it."""
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
    return {
        "resourceType": "Consent",
        "identifier": [consent_identifier(choice)],
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": PRIVACY_CONSENT}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": choice.given.isoformat(),
        "provision": provision,
    }


def consent_identifier(choice: Choice) -> Resource:
    """Return the identifier the person gives a Consent: per person and kind."""
    return {"system": CONSENT_SYSTEM, "value": f"{choice.cccd}-{choice.kind}"}


def _checked(response: httpx.Response) -> Any:
    """Return the JSON of a successful answer; ConsentRefused naming the request otherwise."""
    if response.is_success:
        return response.json()
    request = response.request
    raise ConsentRefused(
        f"{request.method} {request.url} answered {response.status_code}: {response.text[:500]}"
    )


def person_login(client: httpx.Client, base: str, admin: Credentials, cccd: str) -> Credentials:
    """Make the person's login (role patient, bound to their citizen ID) as the admin does,
    `POST /admin/clients`; return the credentials that ask for its token."""
    body = {"role": "patient", "patient": cccd, "name": DEMO_NAME}
    made = _checked(client.post(f"{base}/admin/clients", json=body, headers=admin.header()))
    return Credentials(client, admin.fhir_base, made["client_id"], made["client_secret"])


def own_patient(client: httpx.Client, cccd: str, headers: Mapping[str, str]) -> str | None:
    """Return the id of one of the person's own Patient records (the first by id), as their
    token finds them by their citizen ID; None when it finds none."""
    # Their token finds only their own records anyway; naming the citizen ID lets the hub use
    # its index (0.01 s, against 0.6 s for all the token's Patients among 386).
    query = f"Patient?{identifier_query(CCCD_SYSTEM, cccd)}&_elements=id"
    found = _checked(client.get(query, headers=headers))
    ids = sorted(str(e["resource"]["id"]) for e in found.get("entry", []) if "resource" in e)
    return ids[0] if ids else None


def write_own(
    client: httpx.Client, base: str, admin: Credentials, mine: Sequence[Choice]
) -> Written:
    """Write one person's Consents through their own login, in one transaction of conditional
    creates on their identifiers."""
    person = person_login(client, base, admin, mine[0].cccd)
    headers = person.header()
    patient = own_patient(client, mine[0].cccd, headers)
    if patient is None:
        return Written(people=1, missing=len(mine))
    entries = [
        {
            "resource": consent(c, patient),
            "request": {
                "method": "POST",
                "url": "Consent",
                "ifNoneExist": identifier_query(CONSENT_SYSTEM, consent_identifier(c)["value"]),
            },
        }
        for c in mine
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answer = _checked(client.post("", json=bundle, headers={"content-type": FHIR_JSON, **headers}))
    statuses = [str(e["response"]["status"]) for e in answer.get("entry", [])]
    return Written(
        people=1,
        created=sum(s.startswith("201") for s in statuses),
        held=sum(s.startswith("200") for s in statuses),
    )


def write_consents(
    client: httpx.Client,
    base: str,
    admin: Credentials,
    chosen: Sequence[Choice],
    progress: Callable[[int, int, Written], None] = lambda done, people, written: None,
) -> Written:
    """Have each person write their own Consents (`write_own`), a few people at a time; call
    `progress(people done, people, written so far)` every PROGRESS_EVERY people and at the end."""
    started = time.monotonic()
    by_person: dict[str, list[Choice]] = {}
    for c in chosen:
        by_person.setdefault(c.cccd, []).append(c)
    written = Written()
    admin.header()  # one admin token for every worker, asked for before they start
    with ThreadPoolExecutor(max_workers=PEOPLE_AT_ONCE) as pool:
        futures = [pool.submit(write_own, client, base, admin, mine) for mine in by_person.values()]
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                written.add(future.result())
                if done % PROGRESS_EVERY == 0 or done == len(futures):
                    written.seconds = time.monotonic() - started
                    progress(done, len(futures), written)
        except BaseException:
            # One refusal stops the demo: the people not yet started need not wait for it.
            pool.shutdown(cancel_futures=True)
            raise
    written.seconds = time.monotonic() - started
    return written
