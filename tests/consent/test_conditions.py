"""The condition algebra the Grant is built with: its simplifications never change a meaning."""

import random
from itertools import chain, combinations
from typing import Any

from consent.grant import (
    FALSE,
    TRUE,
    AllOf,
    Condition,
    LabelIn,
    TypeIn,
    all_of,
    any_of,
    holds,
    negate,
)

TYPES = ["Observation", "Condition", "Immunization", "Encounter"]
LABELS = [("s", "HIV"), ("s", "PSY"), ("s", "SUD"), ("t", "R")]
UNIVERSE = [
    (rtype, frozenset(labels))
    for rtype in [*TYPES, "Procedure"]
    for labels in chain.from_iterable(combinations(LABELS, n) for n in range(len(LABELS) + 1))
]


def some(rng: random.Random, pool: list[Any]) -> frozenset[Any]:
    return frozenset(rng.sample(pool, rng.randint(1, 3)))


def expression(rng: random.Random, depth: int) -> tuple[Any, ...]:
    """Return a random boolean expression over the record, as a plain tuple tree."""
    roll = rng.random()
    if depth == 0 or roll < 0.3:
        if rng.random() < 0.5:
            return ("type", some(rng, TYPES))
        return ("label", some(rng, LABELS))
    if roll < 0.45:
        return ("not", expression(rng, depth - 1))
    op = "and" if roll < 0.75 else "or"
    return (op, *(expression(rng, depth - 1) for _ in range(rng.randint(0, 4))))


def truth(expr: tuple[Any, ...], rtype: str, labels: frozenset[Any]) -> bool:
    """Evaluate an expression directly, without the algebra."""
    op = expr[0]
    if op == "type":
        return rtype in expr[1]
    if op == "label":
        return not expr[1].isdisjoint(labels)
    if op == "not":
        return not truth(expr[1], rtype, labels)
    values = [truth(e, rtype, labels) for e in expr[1:]]
    return all(values) if op == "and" else any(values)


def build(expr: tuple[Any, ...]) -> Condition:
    """Build the expression with the algebra's constructors."""
    op = expr[0]
    if op == "type":
        return TypeIn(expr[1])
    if op == "label":
        return LabelIn(expr[1])
    if op == "not":
        return negate(build(expr[1]))
    terms = [build(e) for e in expr[1:]]
    return all_of(*terms) if op == "and" else any_of(*terms)


def test_algebra_keeps_meaning() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        expr = expression(rng, 4)
        condition = build(expr)
        for rtype, labels in UNIVERSE:
            assert holds(condition, rtype, labels) == truth(expr, rtype, labels), (expr, condition)


def test_constants() -> None:
    assert all_of() == TRUE and any_of() == FALSE
    assert all_of(TypeIn(frozenset({"Observation"})), FALSE) == FALSE
    assert any_of(LabelIn(frozenset({("s", "HIV")})), TRUE) == TRUE
    assert negate(TRUE) == FALSE and negate(FALSE) == TRUE


def test_merges_leaves_on_one_field() -> None:
    obs, cond = frozenset({"Observation"}), frozenset({"Condition"})
    hiv, psy = frozenset({("s", "HIV")}), frozenset({("s", "PSY")})
    assert all_of(TypeIn(obs | cond), TypeIn(cond, negated=True)) == TypeIn(obs)
    assert any_of(TypeIn(obs), TypeIn(obs, negated=True)) == TRUE
    assert all_of(LabelIn(hiv, negated=True), LabelIn(psy, negated=True)) == LabelIn(
        hiv | psy, negated=True
    )
    assert all_of(LabelIn(hiv), LabelIn(hiv, negated=True)) == FALSE
    # Two labels each required stay two terms: "one of HIV and one of PSY".
    assert all_of(LabelIn(hiv), LabelIn(psy)) == AllOf((LabelIn(hiv), LabelIn(psy)))
