"""The facility registry: the ministry's CSV parsed, imported as Organization and Location into
the session's database, read and edited through the API, and loaded by `ehrhub admin`."""

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from live import REPO, START_SECONDS, clean_env, ehrhub
from support import FHIR_JSON, FacilityClients

from adapters.simulate.demo import write_registry
from adapters.simulate.facilities import ALL_PROVINCES, facilities
from fhir_profiles.pack import pack_of
from fhir_profiles.validator import Validator
from hub.fhir.validate import validate_resource
from hub.reporting.registry import (
    FACILITY_SYSTEM,
    PROVINCE_EXTENSION,
    Facility,
    import_facilities,
    location,
    organization,
    parse_csv,
    vocabulary,
)
from hub.settings import Settings
from hub.store.scope import Scope

HEADER = "code,name,province,level,type,ownership\n"


def new_code() -> str:
    """Return a facility code no other test uses (in the 9xxxx range no simulator province has)."""
    return f"9{uuid.uuid4().int % 10_000:04d}"


def row(code: str, name: str = "Bệnh viện Đa khoa Thử nghiệm", province: str = "Huế") -> str:
    return f"{code},{name},{province},provincial,hospital,public\n"


def parsed(text: str) -> list[Facility]:
    found, refused = parse_csv(text)
    assert refused == []
    return found


def test_each_problem_of_a_line_is_refused_naming_the_line() -> None:
    lines = [
        ",Thiếu mã,Huế,central,hospital,public",
        "1234,Mã ngắn,Huế,central,hospital,public",
        "12a45,Mã chữ,Huế,central,hospital,public",
        "12345,,Huế,central,hospital,public",
        "12346,Tỉnh lạ,Hà Tây,central,hospital,public",
        "12347,Cấp lạ,Huế,district,hospital,public",
        "12348,Loại lạ,Huế,central,pharmacy,public",
        "12349,Sở hữu lạ,Huế,central,hospital,state",
        "12350,Bệnh viện A,Huế,central,hospital,public",
        "12350,Bệnh viện A lần hai,Huế,central,hospital,public",
    ]
    found, refused = parse_csv(HEADER + "\n".join(lines) + "\n")
    assert [f.code for f in found] == ["12350"]
    assert [(r.line, r.problem) for r in refused] == [
        (2, "the code is missing"),
        (3, "code '1234' is not 5 digits"),
        (4, "code '12a45' is not 5 digits"),
        (5, "facility 12345 has no name"),
        (6, "facility 12346: unknown province 'Hà Tây'"),
        (7, "facility 12347: unknown level 'district' (one of: central, commune, provincial, "
         "regional)"),
        (8, "facility 12348: unknown type 'pharmacy' (one of: clinic, health-centre, "
         "health-station, hospital, maternity-home, other, polyclinic)"),
        (9, "facility 12349: unknown ownership 'state' (one of: private, public)"),
        (11, "code 12350 is also on line 10"),
    ]  # fmt: skip


def test_a_header_without_a_column_refuses_the_file() -> None:
    found, refused = parse_csv("code,name,province,level\n12345,A,Huế,central\n")
    assert found == []
    assert [str(r) for r in refused] == ["line 1: the header lacks the column(s) type, ownership"]


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("38", "38"),
        ("1", "01"),
        ("Thanh Hóa", "38"),
        ("thanh hoa", "38"),
        ("Tỉnh Thanh Hoá", "38"),  # the old accent placement
        ("TP Hồ Chí Minh", "79"),
        ("Thành phố Hồ Chí Minh", "79"),
        ("ho chi minh", "79"),
        ("Thừa Thiên Huế", "46"),  # its name until 2025
        ("DAK LAK", "66"),
    ],
)
def test_a_province_is_given_by_code_or_name_with_or_without_accents(given: str, code: str) -> None:
    assert vocabulary(None).province(given) == code


def test_kinds_may_be_given_by_their_vietnamese_display() -> None:
    (found,) = parsed(HEADER + "12345,Trạm Y tế xã A,Huế,Xã,Trạm y tế,Công lập\n")
    assert (found.level, found.type, found.ownership) == ("commune", "health-station", "public")


def test_every_simulator_province_is_in_the_pack() -> None:
    words = vocabulary(None)
    assert {p.name: words.province(p.name) for p in ALL_PROVINCES} == {
        "Hà Nội": "01",
        "Hải Phòng": "31",
        "Huế": "46",
        "Đà Nẵng": "48",
        "TP Hồ Chí Minh": "79",
        "Cần Thơ": "92",
        "Quảng Ninh": "22",
        "Lào Cai": "15",  # the simulator's insurance code 10 is the former Lào Cai's
        "Thanh Hóa": "38",
        "Nghệ An": "40",
        "Đắk Lắk": "66",
        "An Giang": "91",  # the simulator's 89 is the former An Giang's
    }


def test_the_pack_lists_34_provinces_and_the_kinds_the_simulator_uses() -> None:
    pack = pack_of("vn")
    provinces = pack.code_systems["https://moh.gov.vn/fhir/CodeSystem/province"]["concept"]
    assert len(provinces) == 34
    kinds = {p["property"][0]["valueCode"] for p in provinces}
    assert sorted(p["code"] for p in provinces if p["property"][0]["valueCode"] == "city") == [
        "01", "31", "46", "48", "79", "92",
    ]  # fmt: skip
    assert kinds == {"city", "province"}
    ids = pack_of("id").code_systems["https://ehrhub.org/fhir/CodeSystem/id-province"]
    assert len(ids["concept"]) == 38


def test_the_demo_registry_makes_valid_organizations_and_locations(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    write_registry(path, facilities(24, 1, 1.0))
    found = parsed(path.read_text(encoding="utf-8"))
    assert len(found) == 24
    validator = Validator(pack_of("vn"))
    for facility in found:
        org = organization(facility)
        assert validate_resource(org) == "Organization"
        assert validator.validate(org) == []
        assert validate_resource(location(facility, f"Organization/{org['id']}")) == "Location"
    org = organization(found[0])
    assert org["address"][0]["state"] == "Hà Nội"
    assert org["address"][0]["extension"] == [
        {
            "url": PROVINCE_EXTENSION,
            "valueCoding": {
                "system": "https://moh.gov.vn/fhir/CodeSystem/province",
                "code": "01",
                "display": "Hà Nội",
            },
        }
    ]


async def test_an_import_adds_then_leaves_alone_then_changes(app: Any) -> None:
    store = app.state.store
    codes = [new_code(), new_code()]
    text = HEADER + "".join(row(c) for c in codes)

    report = await import_facilities(store, parsed(text))
    assert (report.added, report.changed, report.unchanged) == (codes, [], [])
    org = await store.current("Organization", f"facility-{codes[0]}", Scope())
    assert org.version == 1 and org.facility == codes[0]
    place = await store.current("Location", f"facility-{codes[0]}", Scope())
    assert place.resource["managingOrganization"] == {"reference": f"Organization/{org.id}"}

    again = await import_facilities(store, parsed(text))
    assert (again.added, again.changed, again.unchanged) == ([], [], codes)
    assert (await store.current("Organization", org.id, Scope())).version == 1

    renamed = HEADER + row(codes[0], name="Bệnh viện Đa khoa Huế mới") + row(codes[1])
    changed = await import_facilities(store, parsed(renamed))
    assert (changed.added, changed.changed, changed.unchanged) == ([], [codes[0]], [codes[1]])
    org = await store.current("Organization", org.id, Scope())
    assert (org.version, org.resource["name"]) == (2, "Bệnh viện Đa khoa Huế mới")
    assert (await store.current("Location", place.id, Scope())).version == 2


async def test_the_registry_is_read_by_admin_and_facility_and_edited_by_admin(
    app: Any, admin: httpx.AsyncClient, facility_client: FacilityClients
) -> None:
    code = new_code()
    await import_facilities(app.state.store, parsed(HEADER + row(code)))
    url = f"/fhir/Organization/facility-{code}"

    read = await admin.get(url)
    assert read.status_code == 200, read.text
    assert read.json()["identifier"] == [{"system": FACILITY_SYSTEM, "value": code}]
    own = await facility_client(code)
    found = await own.get("/fhir/Organization", params={"identifier": f"{FACILITY_SYSTEM}|{code}"})
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [f"facility-{code}"]

    edited = read.json() | {"telecom": [{"system": "phone", "value": "0234 3822 325"}]}
    put = await admin.put(url, json=edited, headers=FHIR_JSON)
    assert put.status_code == 200, put.text
    assert put.json()["meta"]["versionId"] == "2"
    # The admin's telephone is no registry column: a re-import keeps it.
    report = await import_facilities(app.state.store, parsed(HEADER + row(code)))
    assert report.unchanged == [code]
    assert (await admin.get(url)).json()["telecom"] == edited["telecom"]


async def test_a_deleted_registry_record_comes_back_with_the_next_import(
    app: Any, admin: httpx.AsyncClient
) -> None:
    code = new_code()
    text = HEADER + row(code)
    await import_facilities(app.state.store, parsed(text))
    url = f"/fhir/Organization/facility-{code}"
    assert (await admin.delete(url)).status_code in (200, 204)
    assert (await admin.get(url)).status_code == 410

    report = await import_facilities(app.state.store, parsed(text))
    assert report.added == [code]
    back = await admin.get(url)
    assert back.status_code == 200, back.text
    assert back.json()["meta"]["versionId"] == "3"


def import_command(settings: Settings, path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run `ehrhub admin facilities import` on the session's database."""
    return subprocess.run(
        ehrhub("admin", "facilities", "import", str(path), *flags, "--mongodb-uri",
               str(settings.mongodb_uri)),
        cwd=REPO,
        env=clean_env(database=settings.database),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )  # fmt: skip


async def test_the_command_reports_and_exits_1_on_a_refused_line(
    app: Any, settings: Settings, tmp_path: Path
) -> None:
    codes = [new_code(), new_code()]
    path = tmp_path / "registry.csv"
    path.write_text(HEADER + row(codes[0]) + "123,Mã sai,Huế,central,hospital,public\n"
                    + row(codes[1], province="Đà Nẵng"), encoding="utf-8")  # fmt: skip

    first = import_command(settings, path)
    assert first.returncode == 1, first.stderr
    assert first.stdout.splitlines() == [
        "added 2, changed 0, unchanged 0, refused 1",
        "refused line 3: code '123' is not 5 digits",
    ]
    second = import_command(settings, path, "--json")
    assert second.returncode == 1, second.stderr
    assert json.loads(second.stdout) == {
        "added": [],
        "changed": [],
        "unchanged": codes,
        "refused": [{"line": 3, "problem": "code '123' is not 5 digits"}],
    }
    org = await app.state.store.current("Organization", f"facility-{codes[1]}", Scope())
    assert org.resource["address"][0]["state"] == "Đà Nẵng"


async def test_the_command_imports_the_demo_registry_without_refusal(
    app: Any, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "registry.csv"
    write_registry(path, facilities(24, 1, 1.0))
    done = import_command(settings, path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("refused 0")
    again = import_command(settings, path)
    assert again.stdout.strip() == "added 0, changed 0, unchanged 24, refused 0"


def test_the_command_help_names_the_exit_status() -> None:
    shown = subprocess.run(
        ehrhub("admin", "facilities", "import", "--help"),
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )
    assert shown.returncode == 0
    assert "Exit status 0 when no line was refused, 1 otherwise" in " ".join(shown.stdout.split())
