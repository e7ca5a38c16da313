"""National person identifiers that carry meaning, checked beyond their pattern.

A Vietnamese citizen ID (CCCD, 12 digits) and an Indonesian NIK (16 digits) each encode the
holder's birth year or date and sex; a record whose identifier disagrees with its own gender or
birth date has one of them wrong, and cannot be linked safely. Each check returns the problems
in words a hospital clerk can act on, with the element they concern; no problem, no finding.

- CCCD (Circular 07/2016/TT-BCA, art. 7): 3 digits of the province where the birth was
  registered, 1 digit of century and sex (0/1: 1900s male/female, 2/3: 2000s, 4/5: 2100s, 6/7:
  2200s, 8/9: 2300s), 2 digits of the birth year, 6 serial digits.
- Health-insurance card (Vietnam Social Security): one of three forms, the old 15-character
  code (2 letters of the beneficiary group, 1 digit of the benefit level 1 to 5, 2 digits of
  the province, the 10-digit social-insurance number), the 10-digit social-insurance number
  alone, or the holder's 12-digit citizen ID.
- NIK (Indonesia's population register, Dukcapil): 6 digits of the region (province,
  regency, district), the birth date as DDMMYY with 40 added to the day for women, 4 serial
  digits.
"""

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Finding:
    """One problem of an identifier: what is wrong, and the element (relative to the
    resource: `identifier[0].value`, `gender`, `birthDate`) it concerns."""

    element: str
    message: str


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def _birth(birth_date: str | None) -> date | None:
    """Return the day of a FHIR date when it names one, else None (a year or month alone)."""
    if not birth_date or len(birth_date) < 10:
        return None
    try:
        return date.fromisoformat(birth_date[:10])
    except ValueError:
        return None


def _year(birth_date: str | None) -> int | None:
    if birth_date and len(birth_date) >= 4 and birth_date[:4].isdigit():
        return int(birth_date[:4])
    return None


def citizen_id(value: str, gender: str | None, birth_date: str | None, at: str) -> list[Finding]:
    """Check a Vietnamese citizen ID against the Patient's gender and birth date; `at` is the
    identifier's element (`identifier[0]`)."""
    if not _digits(value, 12):
        return [Finding(f"{at}.value", f"A citizen ID has 12 digits; {value!r} does not")]
    century_sex = int(value[3])
    year = 1900 + (century_sex // 2) * 100 + int(value[4:6])
    sex = "female" if century_sex % 2 else "male"
    found = []
    if gender in ("male", "female") and gender != sex:
        found.append(
            Finding(
                "gender",
                f"The citizen ID {value} is a {sex}'s (its 4th digit is {century_sex}) but the "
                f"patient's gender is {gender}: correct one of them",
            )
        )
    born = _year(birth_date)
    if born is not None and born != year:
        found.append(
            Finding(
                "birthDate",
                f"The citizen ID {value} says born in {year} (digits 4 to 6: "
                f"{value[3:6]}) but the birth date is {birth_date}: correct one of them",
            )
        )
    return found


def nik(value: str, gender: str | None, birth_date: str | None, at: str) -> list[Finding]:
    """Check an Indonesian NIK against the Patient's gender and birth date."""
    if not _digits(value, 16):
        return [Finding(f"{at}.value", f"A NIK has 16 digits; {value!r} does not")]
    day, month, year = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex = "female" if day > 40 else "male"
    day -= 40 if day > 40 else 0
    if not (1 <= day <= 31 and 1 <= month <= 12):
        problem = f"The NIK {value} holds no birth date (digits 7 to 12: {value[6:12]})"
        return [Finding(f"{at}.value", problem)]
    found = []
    if gender in ("male", "female") and gender != sex:
        found.append(
            Finding(
                "gender",
                f"The NIK {value} is a {sex}'s (its birth day {value[6:8]} is "
                f"{'over' if sex == 'female' else 'at most'} 40) but the patient's gender is "
                f"{gender}: correct one of them",
            )
        )
    born = _birth(birth_date)
    if born is not None and (born.day, born.month, born.year % 100) != (day, month, year):
        found.append(
            Finding(
                "birthDate",
                f"The NIK {value} says born on {day:02d}-{month:02d}-..{year:02d} but the birth "
                f"date is {birth_date}: correct one of them",
            )
        )
    return found


def insurance_card(value: str, at: str) -> list[Finding]:
    """Check a Vietnamese health-insurance card number's form (one of the three)."""
    if _digits(value, 10) or _digits(value, 12):
        return []
    if len(value) == 15 and value.isascii():
        group, level, rest = value[:2], value[2], value[3:]
        if group.isalpha() and group.isupper() and level in "12345" and rest.isdigit():
            return []
        return [
            Finding(
                f"{at}.value",
                f"The insurance card {value} is not of the 15-character form: 2 capital "
                "letters of the beneficiary group, the benefit level (1 to 5), 2 digits of the "
                "province and the 10-digit social-insurance number",
            )
        ]
    return [
        Finding(
            f"{at}.value",
            f"The insurance card {value!r} has none of the three forms: the 15-character "
            "card code, the 10-digit social-insurance number, or the 12-digit citizen ID",
        )
    ]
