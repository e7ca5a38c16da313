"""Every profile of both country packs, rule by rule: each valid record passes and survives
fhir.resources unchanged, each rule broken alone gives its issue at its path, and a rule
without a case fails. The tables are in test_rules_vn.py and test_rules_id.py."""

from collections.abc import Callable
from functools import cache
from types import ModuleType

import pytest

from fhir_profiles.pack import load
from fhir_profiles.validator import Validator
from tests.profiles import test_rules_id, test_rules_vn
from tests.profiles.records import (
    Case,
    Resource,
    assert_case,
    assert_every_rule_has_a_case,
    assert_round_trip,
    rules_in,
)

TABLES: dict[str, ModuleType] = {"vn": test_rules_vn, "id": test_rules_id}


@cache
def validator(country: str) -> Validator:
    return Validator(load(country))


@pytest.mark.parametrize(
    ("country", "record"),
    [(c, r) for c, table in TABLES.items() for r in table.RECORDS],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_a_valid_record_round_trips_with_no_issue(
    country: str, record: Callable[[], Resource]
) -> None:
    assert_round_trip(validator(country), record())


@pytest.mark.parametrize(
    ("country", "case"),
    [(c, case) for c, table in TABLES.items() for case in table.CASES + table.MORE],
    ids=lambda value: value if isinstance(value, str) else value.covers,
)
def test_breaking_one_rule_gives_its_issue_at_its_path(country: str, case: Case) -> None:
    assert_case(validator(country), case)


@pytest.mark.parametrize("country", TABLES)
def test_every_rule_of_the_pack_has_a_case(country: str) -> None:
    assert_every_rule_has_a_case(load(country), TABLES[country].CASES)


@pytest.mark.parametrize("country", TABLES)
def test_the_validator_lists_every_rule_with_the_severity_and_axis_of_its_findings(
    country: str,
) -> None:
    catalogue = validator(country).rules()
    assert set(catalogue) == set(rules_in(load(country)))
    for case in TABLES[country].CASES:
        for issue in validator(country).validate(case.broken()):
            if issue.rule == case.expected_rule:
                assert catalogue[issue.rule] == (issue.severity, issue.axis), issue
