"""The key property: the Grant (and the MongoDB filter made from it) allows exactly what
`decide` allows, over many random consents, accesses and records.

`decide` walks the provisions record by record; `grant` compiles them into conditions without
seeing a record: two implementations of the same rules, checked against each other. The
filter is evaluated here by a tiny interpreter of the operators `grant_filter` emits.
"""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from consent import Access, Policy, Record, grant_filter, label_key

SEED = 20261127
POLICIES = 600
ACCESSES_PER_POLICY = 6
RECORDS_PER_POLICY = 40

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FACILITIES = ["79001", "79002", "79003", "79004"]
ORGS = {f"Organization/o{code}": code for code in FACILITIES}
PURPOSES = ["TREAT", "ETREAT", "HRESCH"]
TYPES = ["Observation", "Condition", "Immunization", "Encounter"]
RECORD_TYPES = [*TYPES, "Procedure"]
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
LABELS = [(ACT_CODE, "HIV"), (ACT_CODE, "PSY"), (ACT_CODE, "SUD"), (CONFIDENTIALITY, "R")]
RECORD_LABELS = [*LABELS, (CONFIDENTIALITY, "V"), ("http://example.org/tags", "HIV")]
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"


def some(rng: random.Random, pool: list[Any], most: int = 2) -> list[Any]:
    return rng.sample(pool, rng.randint(1, most))


def day(offset: int) -> str:
    return (NOW + timedelta(days=offset)).date().isoformat()


def random_provision(rng: random.Random, depth: int, root: bool) -> dict[str, Any]:
    node: dict[str, Any] = {}
    if not root or rng.random() < 0.9:
        node["type"] = rng.choice(["permit", "deny"])
    if rng.random() < 0.3:
        refs: list[dict[str, Any]] = []
        for code in some(rng, FACILITIES):
            if rng.random() < 0.5:
                refs.append({"reference": {"reference": f"Organization/o{code}"}})
            else:
                system = "https://moh.gov.vn/fhir/sid/facility"
                refs.append({"reference": {"identifier": {"system": system, "value": code}}})
        node["actor"] = refs
    if rng.random() < 0.35:
        system = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
        node["purpose"] = [{"system": system, "code": c} for c in some(rng, PURPOSES)]
    if rng.random() < 0.2:
        period = {}
        if rng.random() < 0.7:
            period["start"] = day(rng.randint(-5, 3))
        if not period or rng.random() < 0.6:
            period["end"] = day(rng.randint(3, 8) if period else rng.randint(-3, 5))
        node["period"] = period
    if rng.random() < 0.35:
        system = "http://hl7.org/fhir/resource-types"
        node["class"] = [{"system": system, "code": t} for t in some(rng, TYPES, 3)]
    if rng.random() < 0.35:
        node["securityLabel"] = [{"system": s, "code": c} for s, c in some(rng, LABELS, 3)]
    if depth > 0 and rng.random() < 0.5:
        node["provision"] = [
            random_provision(rng, depth - 1, False) for _ in range(rng.randint(1, 3))
        ]
    return node


def random_consent(rng: random.Random, i: int) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": f"c{i}",
        "status": "active" if rng.random() < 0.85 else rng.choice(["inactive", "draft"]),
        "scope": {
            "coding": [
                {
                    "system": SCOPE_SYSTEM,
                    "code": "patient-privacy" if rng.random() < 0.9 else "research",
                }
            ]
        },
        "policyRule": {"coding": [{"system": ACT_CODE, "code": rng.choice(["OPTIN", "OPTOUT"])}]},
        "provision": random_provision(rng, 2, True),
    }
    if rng.random() < 0.2:
        resource["dateTime"] = day(rng.randint(-3, 3))
    return resource


def random_access(rng: random.Random) -> Access:
    at = NOW + timedelta(days=rng.randint(-6, 9), hours=rng.randint(0, 23))
    if rng.random() < 0.3:
        return Access(rng.choice(FACILITIES), at, "ETREAT", break_glass=True)
    return Access(rng.choice(FACILITIES), at, rng.choice(PURPOSES))


def random_record(rng: random.Random) -> Record:
    labels = frozenset(rng.sample(RECORD_LABELS, rng.choice([0, 0, 1, 1, 2, 3])))
    return Record(rng.choice(FACILITIES), rng.choice(RECORD_TYPES), labels)


def stored(record: Record) -> dict[str, Any]:
    """Return the record as the store would hold it, with the fields the filter reads."""
    doc: dict[str, Any] = {"resourceType": record.resource_type, "_hub": {"fac": record.facility}}
    if record.labels:
        doc["_hub"]["labels"] = sorted(label_key(label) for label in record.labels)
    return doc


def matches(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Evaluate a MongoDB filter using only equality, $in, $nin, $and and $or."""
    for key, condition in query.items():
        if key == "$and":
            ok = all(matches(q, doc) for q in condition)
        elif key == "$or":
            ok = any(matches(q, doc) for q in condition)
        elif key.startswith("$"):
            raise AssertionError(f"unexpected operator {key}")
        else:
            ok = field_matches(lookup(doc, key), condition)
        if not ok:
            return False
    return True


def lookup(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def field_matches(value: Any, condition: Any) -> bool:
    values = value if isinstance(value, list) else ([] if value is None else [value])
    if not isinstance(condition, dict):
        return condition in values
    assert len(condition) == 1, condition
    [(op, operand)] = condition.items()
    if op == "$in":
        return any(v in operand for v in values)
    if op == "$nin":
        return not any(v in operand for v in values)
    raise AssertionError(f"unexpected operator {op}")


def leaves(query: dict[str, Any]) -> int:
    """Count the field conditions of a filter."""
    return sum(
        sum(leaves(q) for q in value) if key in ("$and", "$or") else 1
        for key, value in query.items()
    )


def test_grant_and_filter_agree_with_decide() -> None:
    rng = random.Random(SEED)
    seen: Counter[str] = Counter()
    widest = 0
    for p in range(POLICIES):
        consents = [random_consent(rng, i) for i in range(rng.choice([0, 1, 1, 2, 2, 3]))]
        default = rng.choice(["deny", "permit"])
        policy = Policy.from_consents(consents, ORGS, default)
        records = [random_record(rng) for _ in range(RECORDS_PER_POLICY)]
        for _ in range(ACCESSES_PER_POLICY):
            access = random_access(rng)
            grant = policy.grant(access)
            query = grant_filter(grant)
            widest = max(widest, leaves(query))
            for record in records:
                decision = policy.decide(access, record)
                context = (p, consents, default, access, record, decision, query)
                assert grant.allows(record) == decision.allowed, context
                assert matches(query, stored(record)) == decision.allowed, context
                assert grant.by_break_glass(record) == decision.by_break_glass, context
                seen["allowed" if decision.allowed else "denied"] += 1
                seen["by break glass"] += decision.by_break_glass
                seen["emergency deny"] += "even in emergencies" in decision.reason
                seen["own"] += record.facility == access.facility
    # The generator must reach every outcome often, or the agreement proves little.
    assert min(seen.values()) > 500, seen
    # Filters stay small: their size grows with the provisions, not exponentially.
    assert widest < 60, widest
