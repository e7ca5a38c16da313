"""Tests of the simulated facilities, people and visits that `ehrhub demo` sends."""

from collections import Counter
from datetime import date, datetime, time

from adapters.base import TZ_VN
from adapters.simulate.facilities import ALL_PROVINCES, facilities
from adapters.simulate.population import person, population_sizes, visits

UNTIL = date(2026, 11, 1)


def test_facilities_span_provinces_levels_ownership_and_formats() -> None:
    found = facilities(24)
    assert len({f.code for f in found}) == 24
    assert len({f.name for f in found}) == 24
    assert all(f.code[:2] == f.province.bhyt_code and len(f.code) == 5 for f in found)
    assert {f.level for f in found} == {"central", "provincial", "regional", "commune"}
    assert {f.ownership for f in found} == {"public", "private"}
    assert {f.type for f in found} == {"hospital", "clinic", "health-station"}
    assert {f.format for f in found} == {"xml130", "hl7v2", "csv"}
    assert len({f.province.cccd_code for f in found}) == len(ALL_PROVINCES)


def test_three_facilities_already_use_every_format() -> None:
    assert {f.format for f in facilities(3)} == {"xml130", "hl7v2", "csv"}


def test_the_same_seed_gives_the_same_facilities_and_visits() -> None:
    assert facilities(10, seed=3) == facilities(10, seed=3)
    assert facilities(10, seed=3) != facilities(10, seed=4)
    found = facilities(5)
    sizes = population_sizes(found)
    again = list(visits(found[0], sizes, 1, UNTIL, 30))
    assert list(visits(found[0], sizes, 1, UNTIL, 30)) == again


def test_scale_sets_the_visits_of_each_facility() -> None:
    small, large = facilities(6, scale=0.5), facilities(6, scale=2)
    assert [f.visits * 4 for f in small] == [f.visits for f in large]


def test_citizen_ids_carry_province_century_sex_and_birth_year() -> None:
    for index in range(50):
        province = ALL_PROVINCES[index % len(ALL_PROVINCES)]
        someone = person(province, index, seed=1)
        cccd = someone.cccd
        assert len(cccd) == 12 and cccd.isdigit()
        assert cccd[:3] == province.cccd_code
        century = (someone.birth.year // 100 - 19) * 2 + (someone.gender == "female")
        assert cccd[3] == str(century)
        assert cccd[4:6] == f"{someone.birth.year % 100:02d}"


def test_visits_fall_in_the_window_and_people_visit_several_facilities() -> None:
    found = facilities(24)
    sizes = population_sizes(found)
    made = [v for f in found for v in visits(f, sizes, 1, UNTIL, 90)]
    assert len(made) == sum(f.visits for f in found)
    first = datetime.combine(date(2026, 8, 3), time(), TZ_VN)
    last = datetime.combine(UNTIL, time.max, TZ_VN)
    assert all(first <= v.start < v.end <= last for v in made)
    assert len({v.number for v in made}) == len(made)
    facilities_per_person = Counter(
        cccd for cccd, _ in {(v.person.cccd, v.facility.code) for v in made}
    )
    assert max(facilities_per_person.values()) >= 2
    travellers = [v for v in made if v.person.province != v.facility.province]
    assert 0 < len(travellers) < len(made) / 4
    assert all(v.person.mrn(v.facility.code).startswith("BN") for v in made)
