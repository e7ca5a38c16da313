"""The synthetic people of a province and the visits they make to its facilities.

Each province has a population of people with their citizen ID (CCCD) and insurance card; a
facility's visitors are drawn from its own province and, now and then, from another one, so
one person has records at several facilities: what the hub's identity linking joins. Every
draw comes from a seeded generator, so the same seed and end date give the same people and
visits, and a demo run twice sends the same records (which the hub then does not duplicate).
"""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from adapters.base import TZ_VN
from adapters.simulate.facilities import ALL_PROVINCES, SimFacility
from adapters.simulate.sample import (
    FAMILY_NAMES,
    GIVEN_NAMES,
    MIDDLE_NAMES,
    Province,
    bhyt_card,
    citizen_id,
)
from adapters.xml130 import catalog

# Share of a facility's visits made by someone from another province.
TRAVELLER_SHARE = 0.1
# People per province, against the visits its facilities receive: fewer people than visits,
# so many people come back and many visit more than one facility.
PEOPLE_PER_VISIT = 0.6
INPATIENT_SHARE = 0.25
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ehrhub.invalid/adapters/simulate/people")


@dataclass(frozen=True)
class LabTest:
    """A lab test as a HIS names it: LOINC code, Vietnamese name, unit, plausible range."""

    loinc: str
    name: str
    unit: str
    low: float
    high: float
    normal: str  # the reference range as printed on the report


LAB_TESTS = (
    LabTest("2160-0", "Creatinin máu", "µmol/L", 50, 160, "62 - 120"),
    LabTest("1742-6", "ALT (GPT)", "U/L", 8, 95, "≤ 40"),
    LabTest("2093-3", "Cholesterol toàn phần", "mmol/L", 3.0, 7.5, "3,9 - 5,2"),
    LabTest("15074-8", "Glucose máu", "mmol/L", 3.5, 15.0, "3,9 - 6,4"),
    LabTest("718-7", "Huyết sắc tố", "g/L", 95, 170, "120 - 160"),
    LabTest("6690-2", "Số lượng bạch cầu", "G/L", 3.5, 14.0, "4 - 10"),
    LabTest("777-3", "Số lượng tiểu cầu", "G/L", 120, 450, "150 - 400"),
)
DEPARTMENTS = ("Khoa Khám bệnh", "Khoa Nội", "Khoa Ngoại", "Khoa Nhi", "Khoa Hồi sức cấp cứu")
DOCTORS = (
    ("000123/BYT-CCHN", "Nguyễn Văn", "Hải"),
    ("004567/HNO-CCHN", "Trần Thị", "Lan"),
    ("012345/HCM-CCHN", "Lê Minh", "Tuấn"),
    ("008901/DNA-CCHN", "Phạm Thu", "Hà"),
)


@dataclass(frozen=True)
class Person:
    """One synthetic person: who they are, where they live, their citizen ID and insurance card."""

    cccd: str
    family: str
    middle: str
    given: str
    gender: str  # male, female
    birth: date
    province: Province
    street: str
    phone: str
    card: str

    @property
    def full_name(self) -> str:
        """Return the name as Vietnamese writes it: family, middle, given."""
        return f"{self.family} {self.middle} {self.given}"

    @property
    def address(self) -> str:
        """Return the home address in one line."""
        return f"{self.street}, {self.province.name}"

    def mrn(self, facility_code: str) -> str:
        """Return this person's medical record number at a facility (each has its own)."""
        digits = uuid.uuid5(_NAMESPACE, f"{facility_code}/{self.cccd}").int % 10**8
        return f"BN{digits:08d}"


@dataclass(frozen=True)
class Visit:
    """One visit of a person to a facility: when, where in it, why, and what was measured."""

    number: str  # the facility's visit key (MA_LK)
    person: Person
    facility: SimFacility
    start: datetime
    end: datetime
    inpatient: bool
    department: str
    doctor: tuple[str, str, str]  # practising-licence number, family and middle name, given
    diagnoses: tuple[tuple[str, str], ...]  # (ICD-10 code, name), the main one first
    labs: tuple[tuple[LabTest, float], ...]


def person(province: Province, index: int, seed: int) -> Person:
    """Return the index-th synthetic person of a province."""
    rng = random.Random(f"ehrhub-simulate/person/{seed}/{province.cccd_code}/{index}")
    gender = rng.choice(("male", "female"))
    born = date(rng.randint(1940, 2023), rng.randint(1, 12), rng.randint(1, 28))
    return Person(
        cccd=citizen_id(rng, province, gender, born.year),
        family=rng.choice(FAMILY_NAMES),
        middle=rng.choice(MIDDLE_NAMES[gender]),
        given=rng.choice(GIVEN_NAMES[gender]),
        gender=gender,
        birth=born,
        province=province,
        street=f"Số {rng.randint(1, 300)} {rng.choice(province.streets)}",
        phone=f"09{rng.randrange(10**8):08d}",
        card=bhyt_card(rng, province),
    )


def population_sizes(facilities: list[SimFacility]) -> dict[str, int]:
    """Return how many people each province has: enough for its facilities' visits."""
    sizes: dict[str, int] = {}
    for f in facilities:
        code = f.province.cccd_code
        sizes[code] = sizes.get(code, 0) + max(1, round(f.visits * PEOPLE_PER_VISIT))
    return sizes


def visits(
    facility: SimFacility,
    sizes: dict[str, int],
    seed: int,
    until: date,
    days: int,
    count: int | None = None,
    batch: str = "",
) -> Iterator[Visit]:
    """Yield a facility's visits in the `days` up to `until`; `batch` names a
    later round of visits (the demo's live rounds), so its visit keys are new ones."""
    rng = random.Random(f"ehrhub-simulate/visits/{seed}/{facility.code}/{batch}")
    provinces = {p.cccd_code: p for p in ALL_PROVINCES if p.cccd_code in sizes}
    wanted = facility.visits if count is None else count
    starts = sorted(
        datetime.combine(until - timedelta(days=rng.randrange(max(days, 1))), datetime.min.time())
        + timedelta(hours=rng.randint(7, 16), minutes=rng.randrange(60))
        for _ in range(wanted)
    )
    for index, start in enumerate(starts, 1):
        home = facility.province
        if rng.random() < TRAVELLER_SHARE and len(provinces) > 1:
            home = provinces[rng.choice(sorted(provinces))]
        who = person(home, rng.randrange(sizes.get(home.cccd_code, 1)), seed)
        inpatient = facility.level != "commune" and rng.random() < INPATIENT_SHARE
        length = timedelta(days=rng.randint(2, 8)) if inpatient else timedelta(hours=2)
        # A stay ends by the end date (no record describes the future): it starts days earlier.
        overrun = start + length - datetime.combine(until, datetime.max.time())
        if overrun > timedelta(0):
            start -= timedelta(days=overrun.days + 1)
        labs = rng.sample(LAB_TESTS, rng.randint(0, 4))
        yield Visit(
            number=f"{facility.code}{batch or 'LK'}{start:%y%m%d}{index:05d}",
            person=who,
            facility=facility,
            start=start.replace(tzinfo=TZ_VN),
            end=(start + length).replace(tzinfo=TZ_VN),
            inpatient=inpatient,
            department=DEPARTMENTS[0] if not inpatient else rng.choice(DEPARTMENTS[1:]),
            doctor=rng.choice(DOCTORS),
            diagnoses=tuple(rng.sample(catalog.DIAGNOSES, rng.randint(1, 3))),
            labs=tuple((t, round(rng.uniform(t.low, t.high), 1)) for t in labs),
        )
