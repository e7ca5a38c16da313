"""The simulated HL7 v2 feeds and CSV exports, read by the real adapters and sent to the hub."""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from support import FacilityClients, find_resources, transact

from adapters import csv as csv_adapter
from adapters import hl7v2
from adapters.base import BHYT_SYSTEM, CCCD_SYSTEM, LOINC_SYSTEM, UCUM_SYSTEM, Output, Rejection
from adapters.csv.mapping import load
from adapters.simulate.csv_export import FILES, MAPPING, line, write_csv
from adapters.simulate.facilities import HL7V2, SimFacility, facilities
from adapters.simulate.hl7v2_export import UCUM, write_hl7v2
from adapters.simulate.population import Visit, population_sizes, visits

FACILITIES, SCALE, DAYS, UNTIL = 12, 0.3, 60, date(2026, 11, 1)
DELIMITERS = "Khoa Tai|Mũi^Họng & Răng~Hàm\\Mặt"
QUOTES = 'Khoa "Tai; Mũi, Họng"'
Bundle = dict[str, Any]


def exported(hl7: bool) -> Iterator[tuple[SimFacility, list[Visit]]]:
    """Yield the facilities of one format (HL7 v2, or else CSV) and their visits; the first
    facility's first visit names its department with delimiters and its patient with quotes."""
    found = facilities(FACILITIES, 1, SCALE)
    sizes = population_sizes(found)
    for n, facility in enumerate(f for f in found if (f.format == HL7V2) == hl7):
        made = list(visits(facility, sizes, 1, UNTIL, DAYS))
        if n == 0:
            person = replace(made[0].person, family="Lê & Hồ", street='Số 5 "ngõ 3"; A^B')
            made[0] = replace(made[0], department=DELIMITERS if hl7 else QUOTES, person=person)
        yield facility, made


def bundles(outputs: Iterable[Output]) -> list[Bundle]:
    """Return the Bundles of an adapter's outputs, failing on any Rejection."""
    found = list(outputs)
    assert not [o for o in found if isinstance(o, Rejection)], found
    return [o for o in found if not isinstance(o, Rejection)]


def resources(found: Iterable[Bundle], resource_type: str) -> list[dict[str, Any]]:
    """Return the resources of one type in Bundles, in order."""
    return [
        e["resource"]
        for b in found
        for e in b["entry"]
        if e["resource"]["resourceType"] == resource_type
    ]


def hl7_bundles(tmp_path: Path) -> Iterator[tuple[SimFacility, list[Visit], list[Bundle]]]:
    """Yield each HL7 v2 facility, its visits and the Bundles its feed file maps to."""
    for facility, made in exported(hl7=True):
        path = tmp_path / f"{facility.code}.hl7"
        count = write_hl7v2(path, made)
        found = bundles(hl7v2.parse_file(path, facility.facility))
        assert count == len(found) == sum(2 + bool(v.labs) for v in made)
        yield facility, made, found


def csv_bundles(tmp_path: Path) -> Iterator[tuple[SimFacility, list[Visit], list[Bundle]]]:
    """Yield each CSV facility, its visits and the Bundles its export maps to."""
    for facility, made in exported(hl7=False):
        folder = tmp_path / facility.code
        count = write_csv(folder, made)
        found = bundles(csv_adapter.parse(folder, folder / "mapping.toml", facility.facility))
        assert count == len(found) == len({v.person.cccd for v in made})
        yield facility, made, found


def has_identifier(resource: dict[str, Any], system: str, value: str) -> bool:
    """Tell whether a resource has an identifier of this system and value."""
    return any(i["system"] == system and i["value"] == value for i in resource["identifier"])


def check_common(facility: SimFacility, made: list[Visit], found: list[Bundle]) -> None:
    """Check what both formats map alike: patients with both ids, encounters, lab results."""
    visit_system, mrn_system = facility.facility.system("visit"), facility.facility.system("mrn")
    encounters = resources(found, "Encounter")
    assert {i["value"] for e in encounters for i in e["identifier"]} == {v.number for v in made}
    assert {i["system"] for e in encounters for i in e["identifier"]} == {visit_system}
    patients = resources(found, "Patient")
    for visit in made:
        person = visit.person
        (patient, *_) = [p for p in patients if has_identifier(p, CCCD_SYSTEM, person.cccd)]
        assert has_identifier(patient, mrn_system, person.mrn(facility.code))
    observations = resources(found, "Observation")
    assert len(observations) == sum(len(v.labs) for v in made) > 0
    units = {UCUM.get(t.unit, t.unit) for v in made for t, _ in v.labs}
    for observation in observations:
        (coding,) = observation["code"]["coding"]
        assert coding["system"] == LOINC_SYSTEM
        quantity = observation["valueQuantity"]
        assert quantity["system"] == UCUM_SYSTEM and quantity["code"] in units


def expected_flag(observation: dict[str, Any]) -> str:
    """Return the abnormal flag an Observation's value has against its reference range."""
    value, (range_,) = observation["valueQuantity"]["value"], observation["referenceRange"]
    if "low" in range_ and value < range_["low"]["value"]:
        return "L"
    return "H" if "high" in range_ and value > range_["high"]["value"] else "N"


def test_the_hl7v2_feed_maps_every_visit_fully(tmp_path: Path) -> None:
    classes: set[str] = set()
    flags: set[str] = set()
    for facility, made, found in hl7_bundles(tmp_path):
        check_common(facility, made, found)
        for visit in made:
            mine = [
                b
                for b in found
                if any(
                    e["resource"]["resourceType"] == "Encounter"
                    and e["resource"]["identifier"][0]["value"] == visit.number
                    for e in b["entry"]
                )
            ]
            assert len(mine) == 2 + bool(visit.labs)
            (last,) = resources(mine[-1:], "Encounter")
            assert last["status"] == "finished"
            assert last["class"]["code"] == ("IMP" if visit.inpatient else "AMB")
            classes.add(last["class"]["code"])
            assert last["period"] == {
                "start": visit.start.isoformat(timespec="seconds"),
                "end": visit.end.isoformat(timespec="seconds"),
            }
            assert last["participant"] and last["location"]
            (location,) = resources(mine[-1:], "Location")
            assert location["name"] == visit.department
            (patient,) = resources(mine[-1:], "Patient")
            assert patient["name"][0]["family"] == visit.person.family
            assert patient["name"][0]["given"] == [visit.person.middle, visit.person.given]
            assert patient["address"][0]["line"] == [visit.person.street]
            assert patient["birthDate"] == visit.person.birth.isoformat()
            assert has_identifier(patient, BHYT_SYSTEM, visit.person.card)
            conditions = resources(mine[-1:], "Condition")
            assert [c["code"]["coding"][0]["code"] for c in conditions] == [
                code for code, _ in visit.diagnoses
            ]
            assert {c["verificationStatus"]["coding"][0]["code"] for c in conditions} == {
                "confirmed"
            }
            assert [d["rank"] for d in last["diagnosis"]] == list(range(1, len(conditions) + 1))
            if not visit.labs:
                continue
            (report,) = resources(mine[1:2], "DiagnosticReport")
            results = resources(mine[1:2], "Observation")
            assert len(report["result"]) == len(results) == len(visit.labs)
            for observation, (test, value) in zip(results, visit.labs, strict=True):
                assert observation["code"]["coding"][0]["code"] == test.loinc
                assert observation["valueQuantity"]["value"] == value
                assert observation["referenceRange"][0]["text"]
                (flag,) = observation["interpretation"]
                assert flag["coding"][0]["code"] == expected_flag(observation)
                flags.add(flag["coding"][0]["code"])
    assert classes == {"IMP", "AMB"} and flags == {"H", "L", "N"}


def test_hl7v2_delimiters_in_free_text_are_escaped_and_come_back(tmp_path: Path) -> None:
    facility, made = next(exported(hl7=True))
    path = tmp_path / "feed.hl7"
    write_hl7v2(path, made[:1])
    text = path.read_bytes().decode("utf-8")
    assert "Khoa Tai\\F\\Mũi\\S\\Họng \\T\\ Răng\\R\\Hàm\\E\\Mặt" in text
    assert "\n" not in text and text.endswith("\r")
    found = bundles(hl7v2.parse(text, facility.facility, "feed.hl7"))
    assert {r["name"] for r in resources(found, "Location")} == {DELIMITERS}
    assert {p["name"][0]["family"] for p in resources(found, "Patient")} == {"Lê & Hồ"}
    lines = {line for p in resources(found, "Patient") for line in p["address"][0]["line"]}
    assert lines == {'Số 5 "ngõ 3"; A^B'}


def test_the_csv_export_maps_every_visit(tmp_path: Path) -> None:
    for facility, made, found in csv_bundles(tmp_path):
        check_common(facility, made, found)
        conditions = resources(found, "Condition")
        assert len(conditions) == sum(len(v.diagnoses) for v in made)
        encounters = {e["identifier"][0]["value"]: e for e in resources(found, "Encounter")}
        for visit in made:
            encounter = encounters[visit.number]
            assert encounter["class"]["code"] == ("IMP" if visit.inpatient else "AMB")
            assert encounter["serviceType"]["text"] == visit.department
            minute = visit.start.replace(second=0, microsecond=0)  # the HIS writes minutes
            assert encounter["period"]["start"] == minute.isoformat()
        names = {p["name"][0]["text"] for p in resources(found, "Patient")}
        first = {v.person.cccd: v.person.full_name for v in reversed(made)}  # written as first seen
        assert names == set(first.values())


def test_the_csv_export_has_the_example_shape(tmp_path: Path) -> None:
    _, made = next(exported(hl7=False))
    write_csv(tmp_path, made + made)
    mapping = load(MAPPING)
    assert (tmp_path / "mapping.toml").read_bytes() == MAPPING.read_bytes()
    example = MAPPING.parent
    for table in mapping.tables:
        columns = {c.name for c in table.columns} | set(table.key)
        columns |= {link.column for link in table.links if link.column}
        assert columns <= set(FILES[table.file])
        written = (tmp_path / table.file).read_bytes()
        assert written.startswith(b"\xef\xbb\xbf" + line(FILES[table.file]).encode())
        assert (example / table.file).read_bytes().startswith(written[: written.index(b"\r\n")])
        # Quoted as the example's HIS quotes: its own files come back byte for byte.
        text = (example / table.file).read_bytes().decode("utf-8-sig")
        rows = csv.reader(text.splitlines(), delimiter=";")
        assert "".join(map(line, rows)) == text
    patients = (tmp_path / "benh_nhan.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(patients) - 1 == len({v.person.cccd for v in made})
    assert any(QUOTES.replace('"', '""') in row for row in (tmp_path / "luot_kham.csv").open())


async def send_twice(client: httpx.AsyncClient, found: list[Bundle]) -> None:
    """Send Bundles to the hub, then again: the second time nothing is created."""
    for bundle in found:
        await transact(client, bundle)
    for bundle in found:
        statuses = await transact(client, bundle)
        assert not [s for s in statuses if s.startswith("201")], statuses


async def check_held(client: httpx.AsyncClient, facility: SimFacility, made: list[Visit]) -> None:
    """Check the hub holds each visit once, with its patient's citizen ID."""
    visit_system = facility.facility.system("visit")
    mrn_system = facility.facility.system("mrn")
    for visit in made:
        (encounter,) = await find_resources(
            client, "Encounter", identifier=f"{visit_system}|{visit.number}"
        )
        (patient,) = await find_resources(
            client, "Patient", identifier=f"{mrn_system}|{visit.person.mrn(facility.code)}"
        )
        assert encounter["subject"]["reference"] == f"Patient/{patient['id']}"
        assert has_identifier(patient, CCCD_SYSTEM, visit.person.cccd)
        results = await find_resources(
            client, "Observation", encounter=f"Encounter/{encounter['id']}"
        )
        assert len(results) == len(visit.labs)


async def test_the_hl7v2_feeds_land_in_the_hub_once(
    facility_client: FacilityClients, tmp_path: Path
) -> None:
    for facility, made, found in hl7_bundles(tmp_path):
        client = await facility_client(facility.code)
        await send_twice(client, found)
        await check_held(client, facility, made)


async def test_the_csv_exports_land_in_the_hub_once(
    facility_client: FacilityClients, tmp_path: Path
) -> None:
    for facility, made, found in csv_bundles(tmp_path):
        client = await facility_client(facility.code)
        await send_twice(client, found)
        await check_held(client, facility, made)
