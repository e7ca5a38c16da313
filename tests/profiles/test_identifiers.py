"""Citizen IDs and NIKs checked against the Patient's own gender and birth date."""

import pytest

from fhir_profiles.identifiers import Finding, citizen_id, insurance_card, nik

AT = "identifier[0]"


@pytest.mark.parametrize(
    ("value", "gender", "birth_date"),
    [
        ("001085012345", "male", "1985-04-12"),  # 0: a man born in the 1900s
        ("079185012345", "female", "1985"),  # 1: a woman born in the 1900s; a year alone
        ("001203000001", "male", "2003-01-01"),  # 2: a man born in the 2000s
        ("001303000001", "female", None),  # 3: a woman born in the 2000s; no birth date
        ("001085012345", "unknown", "1985-04"),  # gender unknown: nothing to compare
    ],
)
def test_a_citizen_id_that_agrees_has_no_finding(
    value: str, gender: str, birth_date: str | None
) -> None:
    assert citizen_id(value, gender, birth_date, AT) == []


def test_a_citizen_id_of_the_other_sex_names_the_gender() -> None:
    [finding] = citizen_id("001185012345", "male", "1985-04-12", AT)
    assert finding.element == "gender"
    assert "female's (its 4th digit is 1)" in finding.message


def test_a_citizen_id_of_another_birth_year_names_the_birth_date() -> None:
    [finding] = citizen_id("001086012345", "male", "1985-04-12", AT)
    assert finding == Finding(
        "birthDate",
        "The citizen ID 001086012345 says born in 1986 (digits 4 to 6: 086) but the birth date "
        "is 1985-04-12: correct one of them",
    )
    # The century counts too: 2 is a man born in the 2000s.
    [century] = citizen_id("001285012345", "male", "1985-04-12", AT)
    assert "born in 2085" in century.message


@pytest.mark.parametrize("value", ["00108501234", "0010850123456", "00108501234x", "٠٠١٠٨٥٠١٢٣٤٥"])
def test_a_citizen_id_that_is_not_12_ascii_digits_names_its_value(value: str) -> None:
    [finding] = citizen_id(value, "male", "1985-04-12", AT)
    assert finding.element == "identifier[0].value" and "12 digits" in finding.message


@pytest.mark.parametrize(
    ("value", "gender", "birth_date"),
    [
        ("3204110512890001", "male", "1989-12-05"),
        ("3204114512890001", "female", "1989-12-05"),  # a woman: day + 40
        ("3204114512890001", "female", "1989"),  # a year alone: the day cannot be compared
    ],
)
def test_a_nik_that_agrees_has_no_finding(value: str, gender: str, birth_date: str) -> None:
    assert nik(value, gender, birth_date, AT) == []


def test_a_nik_of_the_other_sex_and_another_day_names_both() -> None:
    findings = nik("3204114512890001", "male", "1989-12-06", AT)
    assert [f.element for f in findings] == ["gender", "birthDate"]
    assert "female's (its birth day 45 is over 40)" in findings[0].message
    assert "born on 05-12-..89" in findings[1].message


@pytest.mark.parametrize("value", ["3204119912890001", "3204110513890001", "320411051289000"])
def test_a_nik_without_a_birth_date_or_16_digits_names_its_value(value: str) -> None:
    [finding] = nik(value, "male", "1989-12-05", AT)
    assert finding.element == "identifier[0].value"


@pytest.mark.parametrize(
    "value", ["DN4790123456789", "HT1010000000001", "7901234567", "001085012345"]
)
def test_each_form_of_insurance_card_is_accepted(value: str) -> None:
    assert insurance_card(value, AT) == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("DN6790123456789", "15-character form"),  # benefit level 6
        ("dn4790123456789", "15-character form"),  # lower case group
        ("DN47901234567X9", "15-character form"),
        ("79012345678", "none of the three forms"),  # 11 digits
        ("", "none of the three forms"),
    ],
)
def test_an_insurance_card_of_no_form_says_which_forms_exist(value: str, says: str) -> None:
    [finding] = insurance_card(value, AT)
    assert finding.element == "identifier[0].value" and says in finding.message
