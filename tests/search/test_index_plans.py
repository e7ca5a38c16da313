"""Every documented search pattern is driven by an index, checked with explain().

For every search parameter of every type in the registry, each form of value its type allows
is compiled, and the predicate that drives the search is explained on its own (the embedded
server's explain() is only trustworthy for single predicates: DESIGN.md). A parameter or form
added later that would scan the collection fails here. The few forms that cannot be driven by
an index by their nature (`ne`, `:not`, `:contains`, `:missing=true`, ...) are listed, and they
are answered by another clause of the same search or by the type index.
"""

from typing import Any

import pytest
from support import winning_index

from hub.search import plan
from hub.search.query import Clause, clause
from hub.search.registry import registry
from hub.store.mongo import Mongo

# Forms no index can answer: they filter what another clause (or the type) found.
NOT_DRIVING = {
    ("token", ":not"),
    ("token", ":text"),
    ("token", "system|"),
    ("string", ":contains"),
    ("date", "ne"),
    ("number", "ne"),
    ("quantity", "ne"),
    ("reference", ":identifier value"),
    ("*", ":missing=true"),
}


def _forms(kind: str, code: str, target: str) -> list[tuple[str, str, str]]:
    """Return (label, parameter name, value) of every form a search type's values take."""
    ordered = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
    forms: dict[str, list[tuple[str, str, str]]] = {
        "token": [
            ("code", code, "x1"),
            ("system|code", code, "http://s|x1"),
            ("|code", code, "|x1"),
            ("system|", code, "http://s|"),
            (":text", f"{code}:text", "Heart"),
            (":not", f"{code}:not", "x1"),
        ],
        "string": [
            ("starts-with", code, "Nguyễn"),
            (":exact", f"{code}:exact", "Nguyễn"),
            (":contains", f"{code}:contains", "guy"),
        ],
        "date": [(p, code, f"{p}2024-03-15T08:00:00+07:00") for p in ordered],
        "number": [(p, code, f"{p}5.4") for p in ordered],
        "quantity": [(p, code, f"{p}5.4") for p in ordered]
        + [
            ("value|system|code", code, "5.4|http://unitsofmeasure.org|mg"),
            ("value||unit", code, "5.4||mg"),
        ],
        "reference": [
            ("Type/id", code, f"{target}/p1"),
            ("id", code, "p1"),
            ("url", code, f"http://other.example/fhir/{target}/p1"),
            (":Type", f"{code}:{target}", "p1"),
            (":identifier", f"{code}:identifier", "http://s|v1"),
            (":identifier value", f"{code}:identifier", "v1"),
        ],
        "uri": [("uri", code, "http://example.org/x")],
    }
    found = forms[kind] + [(":missing=false", f"{code}:missing", "false")]
    found.append((":missing=true", f"{code}:missing", "true"))
    if code == "identifier":
        found.append((":of-type", f"{code}:of-type", "http://t|MR|v1"))
    return found


def _cases() -> list[tuple[str, str, str, str, str]]:
    cases = []
    for resource_type, params in sorted(registry().by_type.items()):
        for code, param in sorted(params.items()):
            if param.special:
                continue
            target = param.targets[0] if param.targets else "Patient"
            for label, name, value in _forms(param.type, code, target):
                cases.append((resource_type, param.type, label, name, value))
    return cases


CASES = _cases()


def _driver(resource_type: str, name: str, value: str) -> tuple[Clause, plan.Driver | None]:
    parsed = clause(resource_type, name, value)
    return parsed, plan.driver(resource_type, parsed)


def test_the_cases_cover_every_parameter() -> None:
    """Nothing in the registry escapes the check below."""
    covered = {(t, n.split(":")[0]) for t, _, _, n, _ in CASES}
    expected = {
        (t, code)
        for t, params in registry().by_type.items()
        for code, p in params.items()
        if not p.special
    }
    assert covered == expected
    assert len(CASES) > 3000


async def test_every_driving_predicate_scans_the_search_index(app: Any) -> None:
    """Each index-backed form compiles to predicates the search index answers."""
    mongo: Mongo = app.state.mongo
    explained: dict[str, str | None] = {}
    undriven = set()
    for resource_type, kind, label, name, value in CASES:
        _, driver = _driver(resource_type, name, value)
        if driver is None:
            undriven.add((kind if label != ":missing=true" else "*", label))
            continue
        for predicate in driver.predicates:
            text = repr(sorted(predicate))
            # One explain per predicate shape is enough: the value changes nothing in the plan.
            shape = f"{text}:{type(next(iter(predicate.values()))).__name__}:{label}"
            if shape not in explained:
                result = await mongo.resources.find(predicate).explain()
                explained[shape] = winning_index(result)
            assert explained[shape] in ("search", "_id_"), (resource_type, name, value, predicate)
    assert undriven == NOT_DRIVING


@pytest.mark.parametrize("prefix", ["eq", "gt", "ge", "lt", "le", "sa", "eb"])
async def test_last_updated_is_driven_by_the_type_time_index(app: Any, prefix: str) -> None:
    """`_lastUpdated` ranges compile to the type and a time range: the type-time index."""
    _, driver = _driver("Observation", "_lastUpdated", f"{prefix}2026-01-01")
    assert driver is not None
    for predicate in driver.predicates:
        assert list(predicate) == ["resourceType", "_hub.ts"]
    result = await app.state.mongo.resources.find({"resourceType": "Observation"}).explain()
    assert winning_index(result) == "type_time"


async def test_the_compartment_and_id_predicates_use_indexes(app: Any) -> None:
    """A patient's compartment and `_id` are each one indexed lookup."""
    mongo: Mongo = app.state.mongo
    for predicate in plan.compartment("Observation", ["p1", "p2"]).predicates:
        assert winning_index(await mongo.resources.find(predicate).explain()) == "search"
    _, by_id = _driver("Patient", "_id", "a,b")
    assert by_id is not None
    for predicate in by_id.predicates:
        assert winning_index(await mongo.resources.find(predicate).explain()) == "_id_"


def test_the_most_selective_clause_drives() -> None:
    """An exact key drives before a range, and a range before nothing."""
    clauses = [
        clause("Observation", "date", "ge2024-01-01"),
        clause("Observation", "code", "http://loinc.org|8867-4"),
        clause("Observation", "status:not", "final"),
    ]
    chosen = plan.best("Observation", clauses, [])
    assert chosen is not None
    # code's values are indexed with combo-code's, which holds code and component.code
    assert chosen.predicates == [{"_hub.sv": "Observation.combo-code#8867-4|http://loinc.org"}]


def test_a_bounded_range_drives_before_a_text_prefix_and_an_open_range() -> None:
    """A birth date (one day) narrows more than a family-name prefix or an open date range."""
    clauses = [
        clause("Patient", "family", "ngu"),
        clause("Patient", "birthdate", "ge1980"),
        clause("Patient", "birthdate", "1985-04-12"),
    ]
    ranked = plan.ranked("Patient", clauses, [])
    assert [d.predicates for d in ranked] == [
        plan.driver("Patient", c).predicates  # type: ignore[union-attr]
        for c in (clauses[2], clauses[0], clauses[1])
    ]
