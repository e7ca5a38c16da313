"""`decide` against a small interpreter written here from docs/consent.md, over seeded random
consents (with actors by role and kind, data, dataPeriod, code, governs), accesses and records.

The interpreter reads the Consent JSON itself, with none of the engine's parsing, coverage or
ICD-10 code: two readings of the same rules, checked against each other.
"""

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from consent import Access, Policy, Record

SEED = 20260601
POLICIES = 400
ACCESSES_PER_POLICY = 5
RECORDS_PER_POLICY = 30

ZONE = timezone(timedelta(hours=7))
NOW = datetime(2025, 6, 1, tzinfo=ZONE)
FACILITIES = ["79001", "79002", "79003", "79004"]
PRACTITIONERS = ["Practitioner/d1", "Practitioner/d2", "urn:cchn|7"]
PURPOSES = ["TREAT", "ETREAT", "HRESCH"]
KEYS = [
    "Encounter/e1",
    "Encounter/e2",
    "Observation/o1",
    "Observation/o2",
    "Condition/c1",
    "Task/t1",
    "MedicationRequest/m1",
    "Patient/p1",
]
RELATED = {
    "Task/t1": frozenset({"MedicationRequest/m1", "Patient/p1"}),
    "Encounter/e1": frozenset({"Patient/p1"}),
    "Observation/o1": frozenset(),
}
ICD = "http://hl7.org/fhir/sid/icd-10"
ICD_CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RECORD_CODES = [
    (ICD, "F32.1"),
    (ICD, "F321"),
    (ICD, "F20"),
    (ICD, "E11.9"),
    (ICD, "J18"),
    (ICD, "A90"),
    (LOINC, "1-1"),
    (LOINC, "2-2"),
    (ICD_CM, "F32.1"),
]
CONSENT_CODES = [
    (ICD, "F32"),
    (ICD, "F32.1"),
    (ICD, "F30-F39"),
    (ICD, "V"),
    (ICD, "IV"),
    (ICD, "J18.9"),
    (LOINC, "1-1"),
    (ICD_CM, "F32"),
]
CHAPTERS = {"V": ("F00", "F99"), "IV": ("E00", "E90")}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LABELS = [(ACT_CODE, "HIV"), (ACT_CODE, "PSY")]
TYPES = sorted({k.partition("/")[0] for k in KEYS})
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


# The generator


def some(rng: random.Random, pool: list[Any], most: int = 2) -> list[Any]:
    return rng.sample(pool, rng.randint(1, min(most, len(pool))))


def day(offset: int) -> str:
    return (NOW + timedelta(days=offset)).date().isoformat()


def random_actor(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.35:
        code = rng.choice(FACILITIES)
        ref = {"identifier": {"system": FACILITY_SYSTEM, "value": code}}
        return {
            "role": {"coding": [{"system": PARTICIPATION, "code": rng.choice(["IRCP", "CST"])}]},
            "reference": ref,
        }
    if roll < 0.8:
        who = rng.choice(PRACTITIONERS)
        if who.startswith("Practitioner/"):
            ref = {"reference": who}
        else:
            system, _, value = who.partition("|")
            ref = {"type": "Practitioner", "identifier": {"system": system, "value": value}}
        return {"role": {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]}, "reference": ref}
    return {"role": {"text": "relative"}, "reference": {"reference": "RelatedPerson/r1"}}


def random_provision(rng: random.Random, depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": rng.choice(["permit", "deny"])}
    if rng.random() < 0.3:
        node["actor"] = [random_actor(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.35:
        node["purpose"] = [{"system": ACT_REASON, "code": c} for c in some(rng, PURPOSES)]
    if rng.random() < 0.1:
        node["period"] = {"start": day(rng.randint(-3, 1)), "end": day(rng.randint(1, 4))}
    if rng.random() < 0.15:
        node["class"] = [
            {"system": "http://hl7.org/fhir/resource-types", "code": t} for t in some(rng, TYPES, 3)
        ]
    if rng.random() < 0.15:
        node["securityLabel"] = [{"system": s, "code": c} for s, c in some(rng, LABELS)]
    if rng.random() < 0.25:
        items = []
        for _ in range(rng.randint(1, 2)):
            meaning = rng.choice(["instance", "related", "dependents"])
            pool = sorted(RELATED) if meaning == "related" else KEYS
            items.append({"meaning": meaning, "reference": {"reference": rng.choice(pool)}})
        node["data"] = items
    if rng.random() < 0.25:
        period = {}
        if rng.random() < 0.7:
            period["start"] = day(rng.randint(-40, -5))
        if not period or rng.random() < 0.6:
            period["end"] = day(rng.randint(-20, 0))
        if "start" in period and "end" in period and period["end"] <= period["start"]:
            del period["end"]
        node["dataPeriod"] = period
    if rng.random() < 0.3:
        node["code"] = [
            {"coding": [{"system": s, "code": c} for s, c in some(rng, CONSENT_CODES)]}
            for _ in range(rng.randint(1, 2))
        ]
    if depth > 0 and rng.random() < 0.5:
        node["provision"] = [random_provision(rng, depth - 1) for _ in range(rng.randint(1, 3))]
    return node


def random_consent(rng: random.Random, i: int) -> dict[str, Any]:
    provision = random_provision(rng, 2)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": f"c{i}",
        "status": "active",
        "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
    }
    if rng.random() < 0.15:
        # R4's own form: an untyped root without conditions, its type from policyRule.
        provision = {k: v for k, v in provision.items() if k == "provision"}
        rule = rng.choice(["OPTIN", "OPTOUT"])
        resource["policyRule"] = {"coding": [{"system": ACT_CODE, "code": rule}]}
    resource["provision"] = provision
    if rng.random() < 0.2:
        resource["dateTime"] = day(rng.randint(-2, 2))
    return resource


def random_access(rng: random.Random) -> Access:
    at = NOW + timedelta(days=rng.randint(-4, 5), hours=rng.randint(0, 23))
    practitioner = rng.choice([None, *PRACTITIONERS])
    if rng.random() < 0.35:
        return Access(rng.choice(FACILITIES), at, "ETREAT", True, practitioner)
    return Access(rng.choice(FACILITIES), at, rng.choice(PURPOSES), False, practitioner)


def random_record(rng: random.Random) -> Record:
    key = rng.choice(KEYS)
    period = None
    if rng.random() < 0.7:
        # Starts on local midnights and around them, so that zone mistakes show.
        start = datetime.combine(
            (NOW + timedelta(days=rng.randint(-45, 2))).date(), datetime.min.time(), ZONE
        )
        start += timedelta(hours=rng.choice([0, 0, -7, 7, 23]), seconds=rng.choice([0, 0, -1]))
        period = (start, start + rng.choice([timedelta(0), timedelta(hours=1), timedelta(days=10)]))
    return Record(
        rng.choice(FACILITIES),
        key.partition("/")[0],
        frozenset(rng.sample(LABELS, rng.randint(0, 1))),
        key=key,
        references=frozenset(rng.sample([k for k in KEYS if k != key], rng.randint(0, 2))),
        codes=frozenset(rng.sample(RECORD_CODES, rng.randint(0, 2))),
        period=period,
    )


# The interpreter


def instants(value: str) -> tuple[datetime, datetime]:
    """Return [first, after) of a date the generator writes ("2025-06-01"), a day in ZONE."""
    first = datetime.fromisoformat(value).replace(tzinfo=ZONE)
    return first, first + timedelta(days=1)


def icd_covers(written: str, code: str) -> bool:
    key = code.upper().replace(".", "")
    if written in CHAPTERS:
        low, high = CHAPTERS[written]
    elif "-" in written:
        low, high = written.split("-")
    else:
        return key.startswith(written.replace(".", ""))
    return low <= key[:3] <= high


def code_covers(written: tuple[str, str], carried: tuple[str, str]) -> bool:
    if written[0] == ICD and carried[0] == ICD:
        return icd_covers(written[1], carried[1])
    return written == carried


def covers(p: dict[str, Any], access: Access, record: Record, seen: Counter[str]) -> bool:
    if "actor" in p:
        facilities, practitioners, custodians, readers = set(), set(), set(), False
        for actor in p["actor"]:
            coding = actor["role"].get("coding", [{}])[0]
            ref = actor["reference"]
            if coding.get("code") == "CST":
                custodians.add(ref["identifier"]["value"])
                continue
            readers = True
            if ref.get("reference", "").startswith("Practitioner/"):
                practitioners.add(ref["reference"])
            elif ref.get("type") == "Practitioner":
                practitioners.add(f"{ref['identifier']['system']}|{ref['identifier']['value']}")
            elif "identifier" in ref:
                facilities.add(ref["identifier"]["value"])
        if readers and access.facility not in facilities:
            if access.practitioner not in practitioners:
                return False
            seen["practitioner"] += 1
        if custodians:
            if record.facility not in custodians:
                return False
            seen["custodian"] += 1
    if "purpose" in p and access.purpose not in {c["code"] for c in p["purpose"]}:
        return False
    if "period" in p:
        if not instants(p["period"]["start"])[0] <= access.at < instants(p["period"]["end"])[1]:
            return False
    if "class" in p and record.resource_type not in {c["code"] for c in p["class"]}:
        return False
    if (
        "securityLabel" in p
        and not {(c["system"], c["code"]) for c in p["securityLabel"]} & record.labels
    ):
        return False
    if "data" in p:
        if not any(data_covers(item, record) for item in p["data"]):
            return False
        seen["data"] += 1
    if "dataPeriod" in p:
        if record.period is None:
            return False
        low = instants(p["dataPeriod"]["start"])[0] if "start" in p["dataPeriod"] else None
        high = instants(p["dataPeriod"]["end"])[1] if "end" in p["dataPeriod"] else None
        first, after = record.period
        if first == after:
            inside = (low is None or low <= first) and (high is None or first < high)
        else:
            inside = (low is None or low < after) and (high is None or first < high)
        if not inside:
            return False
        seen["dataPeriod"] += 1
    if "code" in p:
        written = [(c["system"], c["code"]) for concept in p["code"] for c in concept["coding"]]
        if not any(code_covers(w, c) for w in written for c in record.codes):
            return False
        seen["code"] += 1
    return True


def data_covers(item: dict[str, Any], record: Record) -> bool:
    ref = item["reference"]["reference"]
    if record.key == ref:
        return True
    if item["meaning"] == "related":
        return record.key in RELATED[ref]
    return item["meaning"] == "dependents" and ref in record.references


PERMIT, DENY, STANDING = 1, 2, 3


def verdict(
    p: dict[str, Any], effect: str, access: Access, record: Record, named: bool, seen: Counter[str]
) -> int:
    if not covers(p, access, record, seen):
        return 0
    named = named or "purpose" in p
    inner = max(
        (verdict(n, n["type"], access, record, named, seen) for n in p.get("provision", [])),
        default=0,
    )
    if inner:
        return inner
    if effect == "permit":
        return PERMIT
    return STANDING if named else DENY


def interpret(
    consents: list[dict[str, Any]],
    governs: dict[str, str | None],
    default: str,
    access: Access,
    record: Record,
    seen: Counter[str],
) -> tuple[bool, bool]:
    """Return (allowed, by break the glass) as docs/consent.md says."""
    if record.facility == access.facility:
        return True, False
    strongest = 0
    for c in consents:
        if "dateTime" in c and access.at < instants(c["dateTime"])[0]:
            continue
        holder = governs.get(f"Consent/{c['id']}")
        if holder is not None and holder != record.facility:
            seen["governed elsewhere"] += 1
            continue
        root = c["provision"]
        effect = root.get("type") or (
            "permit" if c["policyRule"]["coding"][0]["code"] == "OPTIN" else "deny"
        )
        strongest = max(strongest, verdict(root, effect, access, record, False, seen))
    allowed = strongest == PERMIT or (strongest == 0 and default == "permit")
    if allowed or not access.break_glass or strongest == STANDING:
        return allowed, False
    return True, True


def test_decide_agrees_with_the_interpreter() -> None:
    rng = random.Random(SEED)
    seen: Counter[str] = Counter()
    for _ in range(POLICIES):
        consents = [random_consent(rng, i) for i in range(rng.choice([1, 1, 2, 3]))]
        governs = {
            f"Consent/{c['id']}": rng.choice([None, None, *FACILITIES])
            for c in consents
            if rng.random() < 0.5
        }
        default = rng.choice(["deny", "permit"])
        policy = Policy.from_consents(
            consents, {}, default, zone=ZONE, related=RELATED, governs=governs
        )
        records = [random_record(rng) for _ in range(RECORDS_PER_POLICY)]
        for _ in range(ACCESSES_PER_POLICY):
            access = random_access(rng)
            for record in records:
                decision = policy.decide(access, record)
                expected = interpret(consents, governs, default, access, record, seen)
                got = (decision.allowed, decision.by_break_glass)
                assert got == expected, (consents, governs, default, access, record, decision)
                seen["allowed" if decision.allowed else "denied"] += 1
                seen["by break glass"] += decision.by_break_glass
                seen["emergency deny"] += "even in emergencies" in decision.reason
                seen["default"] += "default" in decision.reason
    # Every outcome and every new element must be reached often, or agreement proves little.
    assert min(seen.values()) > 500, seen
