"""Every read path, for every caller, returns exactly what the access model allows.

A seeded generator (`--seed N`; a fixed seed by default) writes, through the real API, three
facilities' records of several persons: some records concern two persons, some are relabelled,
moved to another patient or deleted between versions; the persons and facilities give
consents of every kind (tests/consent_access/model.py). Then each caller of every role reads
through every path: read, vread, instance and type history (naming a person or not), search by
patient (one and two persons), `_summary=count`, `_include`, `_revinclude`, chains, `_has`,
compartment search, `$everything`, batch and transaction reads. Each path's answer is compared,
on its own, with what the model's oracle allows over the whole world: no more, no less.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from consent_access import model
from consent_access.model import CCCD, ICD10, Caller, Given, Kind, Version, World, sees
from consent_access.records import consent
from support import FHIR_JSON, client_for, hub_client, observation, patient, unique

DEFAULT_SEED = 20261208
TYPES = ("Observation", "Condition", "Encounter", "Patient", "Consent", "Practitioner")


@dataclass
class Built:
    """The world as written, and the clients of its callers."""

    world: World
    callers: list[tuple[Caller, httpx.AsyncClient]] = field(default_factory=list)
    seed: int = DEFAULT_SEED


class Writer:
    """Writes the generated world through the API, noting each version for the oracle."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng

    async def create(
        self, client: httpx.AsyncClient, resource: dict[str, Any], holder: str | None, **extra: Any
    ) -> str:
        response = await client.post(
            f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
        )
        assert response.status_code == 201, response.text
        body = response.json()
        key = f"{body['resourceType']}/{body['id']}"
        self.world.versions[key] = [self._version(key, 1, holder, body, **extra)]
        return str(body["id"])

    async def update(
        self,
        client: httpx.AsyncClient,
        key: str,
        resource: dict[str, Any],
        by_person: bool = False,
    ) -> None:
        response = await client.put(f"/fhir/{key}", json=resource, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        last = self.world.current(key)
        self.world.versions[key].append(
            self._version(key, last.number + 1, last.holder, response.json(), by_person=by_person)
        )

    async def delete(self, client: httpx.AsyncClient, key: str) -> None:
        response = await client.delete(f"/fhir/{key}")
        assert response.status_code == 204, response.text
        last = self.world.current(key)
        self.world.versions[key].append(Version(key, last.number + 1, last.holder, None))

    def _version(
        self,
        key: str,
        number: int,
        holder: str | None,
        body: dict[str, Any],
        by_person: bool = False,
    ) -> Version:
        return Version(key, number, holder, body, _concerned(body), by_person)


def _concerned(resource: dict[str, Any]) -> frozenset[str]:
    """Return the Patient ids a resource concerns (its Patient compartment references)."""
    kind = resource["resourceType"]
    if kind == "Patient":
        return frozenset({resource["id"]})
    fields = {
        "Observation": ("subject", "performer"),
        "Condition": ("subject", "asserter"),
        "Encounter": ("subject",),
        "Consent": ("patient",),
    }.get(kind, ())
    found = set()
    for name in fields:
        value = resource.get(name)
        for ref in value if isinstance(value, list) else [value] if value else []:
            if ref.get("reference", "").startswith("Patient/"):
                found.add(ref["reference"].split("/")[1])
    return frozenset(found)


def _citizen(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789") for _ in range(12))


def visit(rng: random.Random) -> dict[str, str]:
    """Return the period of a finished visit: two hours of a day, or still open (a Period
    without an end is ongoing, FHIR says)."""
    start = _day(rng)
    if rng.random() < 0.2:
        return {"start": start}
    end = datetime.fromisoformat(start) + timedelta(hours=2)
    return {"start": start, "end": end.isoformat(timespec="seconds")}


def _day(rng: random.Random) -> str:
    """Return a clinical date from mid-2025 to late 2026, in Vietnam."""
    start = datetime(2025, 6, 1, tzinfo=model.VIETNAM)
    return model.later(start, rng.randrange(0, 520))


@pytest.fixture(scope="module")
async def built(app: Any, request: pytest.FixtureRequest) -> AsyncIterator[Built]:
    seed = request.config.getoption("--seed", default=None) or DEFAULT_SEED
    rng = random.Random(seed)
    codes = [unique(f"M{name}") for name in "ABC"]
    world = World(codes, datetime.now(UTC))
    writer = Writer(world, rng)
    async with contextlib.AsyncExitStack() as stack:
        systems = {
            code: await stack.enter_async_context(client_for(app, "facility", facility=code))
            for code in codes
        }
        for code in codes:
            practitioner = {"resourceType": "Practitioner", "name": [{"family": f"Lê {code}"}]}
            await writer.create(systems[code], practitioner, code)
        # Persons and their Patient records at one or two facilities (the last has no ID).
        persons = [f"P{i}" for i in range(6)]
        records: dict[str, list[tuple[str, str]]] = {}  # person -> [(patient id, holder)]
        for index, person in enumerate(persons):
            holders = rng.sample(codes, rng.choice([1, 2, 2])) if index < 5 else [codes[0]]
            if index < 5:
                world.citizen[person] = _citizen(rng)
            for holder in holders:
                body = patient(world.citizen.get(person)) if index < 5 else patient()
                if index == 5:
                    body["identifier"] = [{"system": "urn:mrn:demo", "value": unique()}]
                pid = await writer.create(systems[holder], body, holder)
                world.person_of[pid] = person
                records.setdefault(person, []).append((pid, holder))
        at = {h: [pid for recs in records.values() for pid, hh in recs if hh == h] for h in codes}
        encounters: dict[str, list[str]] = {}
        observations: list[tuple[str, str]] = []  # (key, holder)
        for person, recs in records.items():
            for pid, holder in recs:
                client = systems[holder]
                encounter = {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": f"Patient/{pid}"},
                    "period": visit(rng),
                }
                eid = await writer.create(client, encounter, holder)
                encounters.setdefault(person, []).append(f"Encounter/{eid}")
                for _ in range(rng.choice([1, 2, 3])):
                    extra: dict[str, Any] = {"effectiveDateTime": _day(rng)}
                    if rng.random() < 0.5:
                        extra["encounter"] = {"reference": f"Encounter/{eid}"}
                    # The first observation is labelled (its label is taken off later), the
                    # fourth is not (a label is added later); the others as drawn.
                    labelled = rng.random() < 0.3
                    if (labelled or not observations) and len(observations) != 3:
                        label = rng.choice(model.LABELS)
                        extra["meta"] = {"security": [{"system": model.ACT_CODE, "code": label}]}
                    others = [p for p in at[holder] if world.person_of[p] != person]
                    if others and rng.random() < 0.3:
                        extra["performer"] = [{"reference": f"Patient/{rng.choice(others)}"}]
                    oid = await writer.create(
                        client, observation(f"Patient/{pid}", **extra), holder
                    )
                    observations.append((f"Observation/{oid}", holder))
                if rng.random() < 0.6:
                    code = rng.choice(["F32.1", "I10", "F32"])
                    condition = {
                        "resourceType": "Condition",
                        "subject": {"reference": f"Patient/{pid}"},
                        "code": {"coding": [{"system": ICD10, "code": code}]},
                        "recordedDate": _day(rng),
                    }
                    await writer.create(client, condition, holder)
        # Versions: relabelled, moved to another patient, updated, deleted (each at least once).
        for n, (key, holder) in enumerate(observations):
            roll = [0.1, 0.3, 0.4, 0.1][n] if n < 4 else rng.random()
            current = world.current(key).resource
            assert current is not None
            body = {k: v for k, v in current.items() if k != "meta"}
            subject = current["subject"]["reference"].split("/")[1]
            others = [p for p in at[holder] if p != subject]
            if roll < 0.2:  # a label added, or the labels taken off
                if not world.current(key).labels():
                    body["meta"] = {"security": [{"system": model.ACT_CODE, "code": "PSY"}]}
                await writer.update(systems[holder], key, body)
            elif roll < 0.35 and others:
                body["subject"] = {"reference": f"Patient/{rng.choice(others)}"}
                await writer.update(systems[holder], key, body)
            elif roll < 0.45:
                await writer.delete(systems[holder], key)
            elif roll < 0.6:
                body["valueQuantity"] = body["valueQuantity"] | {"value": rng.randrange(50, 120)}
                if "meta" in current:
                    body["meta"] = {"security": current["meta"].get("security", [])}
                await writer.update(systems[holder], key, body)
        # Consents, by the persons themselves or by a facility holding their record.
        kinds = [
            "permit all",
            "deny all",
            "permit but PSY",
            "permit Conditions",
            "permit one facility",
            "deny one facility",
            "permit expired",
            "permit emergencies",
            "deny even in emergencies",
            "permit recent records",
            "permit but depression",
            "permit one visit",
        ]
        logins: dict[str, httpx.AsyncClient] = {}
        for person in persons[:5]:
            login = await stack.enter_async_context(
                client_for(app, "patient", patient=world.citizen[person])
            )
            logins[person] = login
        rng.shuffle(kinds)
        given = 0
        for person, recs in records.items():
            for _ in range(rng.choice([1, 1, 2])):
                name = kinds[given % len(kinds)]
                given += 1
                kind = Kind(
                    name,
                    facility=rng.choice(codes),
                    reference=rng.choice(encounters.get(person, [""])),
                )
                pid, holder = rng.choice(recs)
                by_person = person in logins and rng.random() < 0.5
                status = "active" if rng.random() < 0.8 else "inactive"
                body = consent(pid, status, **kind.provision())
                client = logins[person] if by_person else systems[holder]
                cid = await writer.create(
                    client, body, None if by_person else holder, by_person=by_person
                )
                writer_of = None if by_person else holder
                if status == "active" and not by_person and person in logins:
                    if rng.random() < 0.3:  # proposed by the facility, confirmed by the person
                        await writer.update(
                            systems[holder],
                            f"Consent/{cid}",
                            body | {"id": cid, "status": "proposed"},
                        )
                        await writer.update(
                            logins[person], f"Consent/{cid}", body | {"id": cid}, by_person=True
                        )
                        writer_of = None
                world.consents.append(
                    Given(f"Consent/{cid}", person, kind, writer_of, status == "active")
                )
        built = Built(world, seed=seed)
        for code in codes:
            built.callers.append((Caller("facility", code), systems[code]))
            clinician = await stack.enter_async_context(client_for(app, "clinician", facility=code))
            built.callers.append((Caller("clinician", code), clinician))
        for person in persons[:3]:
            built.callers.append((Caller("patient", person=person), logins[person]))
        admin = await stack.enter_async_context(client_for(app, "admin"))
        built.callers.append((Caller("admin"), admin))
        auditor = await stack.enter_async_context(client_for(app, "auditor"))
        built.callers.append((Caller("auditor"), auditor))
        # Break the glass at C, declared for a person held elsewhere.
        declared = rng.choice([p for p in persons[:5] if any(h != codes[2] for _, h in records[p])])
        ordinary = await stack.enter_async_context(client_for(app, "clinician", facility=codes[2]))
        response = await ordinary.post(
            "/auth/break-glass",
            data={
                "reason": "Unconscious on arrival, no history",
                "patient": records[declared][0][0],
            },
        )
        assert response.status_code == 200, response.text
        emergency = await stack.enter_async_context(hub_client(app))
        emergency.headers["authorization"] = f"Bearer {response.json()['access_token']}"
        built.callers.append((Caller("clinician", codes[2], declared=declared), emergency))
        yield built


class Checker:
    """Reads every path as one caller and notes where the hub differs from the oracle."""

    def __init__(self, built: Built, caller: Caller, client: httpx.AsyncClient) -> None:
        self.world = built.world
        self.caller = caller
        self.client = client
        self.differences: list[str] = []

    def _sees(self, named: set[str], version: Version) -> bool:
        return sees(self.world, self.caller, named, version)

    def _differs(self, path: str, got: Any, expected: Any) -> None:
        if got == expected:
            return
        if isinstance(got, set | list) and isinstance(expected, set | list):
            more, fewer = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
            said = f"shown but not allowed {more[:5]}, allowed but not shown {fewer[:5]}"
        else:
            said = f"got {got}, expected {expected}"
        self.differences.append(f"{self.caller} {path}: {said}")

    async def _get(self, url: str, **params: str) -> tuple[int, dict[str, Any]]:
        response = await self.client.get(url, params=params)
        assert response.status_code < 500, response.text
        return response.status_code, response.json()

    async def _entries(self, url: str, **params: str) -> tuple[set[str], set[str], Any]:
        """Return the match and include "Type/id" of a search, and its total (None if
        refused)."""
        status, body = await self._get(url, _count="1000", **params)
        if status in (403, 404):
            return set(), set(), None
        assert status == 200, body
        kinds: dict[str, set[str]] = {"match": set(), "include": set()}
        for entry in body.get("entry", []):
            resource = entry.get("resource") or {}
            mode = (entry.get("search") or {}).get("mode")
            if mode in kinds:
                kinds[mode].add(f"{resource['resourceType']}/{resource['id']}")
        return kinds["match"], kinds["include"], body.get("total")

    def _named_by(self, key: str) -> set[str]:
        """Return the Patient ids reached by a request naming a record by its path."""
        return model.named_patients(self.world, self.world.current(key).patients)

    def _current(self, named: set[str], keys: Any) -> set[str]:
        """Return the keys whose current version is shown and not deleted."""
        return {
            k
            for k in keys
            if not self.world.current(k).deleted and self._sees(named, self.world.current(k))
        }

    async def reads(self) -> None:
        for key in self.world.versions:
            current = self.world.current(key)
            named = self._named_by(key)
            status, _ = await self._get(f"/fhir/{key}")
            shown = self._sees(named, current)
            expected = (410 if current.deleted else 200) if shown else 404
            self._differs(f"GET {key}", status in (200, 410) and status, shown and expected)
            # A record of one version answers a vread as its read; each of several versions
            # is a case of its own.
            versions = self.world.versions[key]
            for version in versions if len(versions) > 1 else ():
                status, _ = await self._get(f"/fhir/{key}/_history/{version.number}")
                shown = self._sees(named, version)
                expected = (410 if version.deleted else 200) if shown else 404
                self._differs(
                    f"GET {key}/_history/{version.number}",
                    status in (200, 410) and status,
                    shown and expected,
                )
            status, body = await self._get(f"/fhir/{key}/_history", _count="1000")
            got = sorted(_etag(e) for e in body.get("entry", [])) if status == 200 else []
            expected_versions = sorted(
                v.number for v in self.world.versions[key] if self._sees(named, v)
            )
            self._differs(f"GET {key}/_history", got, expected_versions)

    async def histories(self) -> None:
        persons = sorted({p for p in self.world.person_of.values()})
        namings: list[tuple[dict[str, str], set[str]]] = [({}, set())]
        for person in (persons[0], persons[2], persons[-1]):
            pid = sorted(self.world.patients_of(person))[0]
            namings.append(({"patient": f"Patient/{pid}"}, model.named_patients(self.world, [pid])))
        for resource_type in TYPES:
            for params, named in namings:
                status, body = await self._get(
                    f"/fhir/{resource_type}/_history", _count="1000", **params
                )
                entries = body.get("entry", []) if status == 200 else []
                # Other tests of the session write shared reference data too: the model
                # speaks of its own world.
                got = sorted(v for v in map(_version_of, entries) if v[0] in self.world.versions)
                expected = sorted(
                    (v.key, v.number)
                    for v in self.world.all_versions()
                    if v.type == resource_type and self._sees(named, v)
                )
                self._differs(f"GET {resource_type}/_history {params}", got, expected)

    async def searches(self) -> None:
        world = self.world
        patients = sorted(world.person_of)
        for pid in patients:
            named = model.named_patients(world, [pid])
            for resource_type in ("Observation", "Condition", "Encounter"):
                matches, _, total = await self._entries(
                    f"/fhir/{resource_type}", patient=f"Patient/{pid}"
                )
                expected = self._current(named, self._with_subject(resource_type, {pid}))
                self._differs(f"{resource_type}?patient={pid}", matches, expected)
                if total is not None:
                    self._differs(f"{resource_type}?patient={pid} total", total, len(expected))
            _, _, counted = await self._entries(
                "/fhir/Observation", patient=f"Patient/{pid}", _summary="count"
            )
            expected = self._current(named, self._with_subject("Observation", {pid}))
            self._differs(f"Observation?patient={pid}&_summary=count", counted or 0, len(expected))
            matches, includes, _ = await self._entries(
                "/fhir/Observation", patient=f"Patient/{pid}", _include="Observation:performer"
            )
            performers = {
                ref
                for key in matches
                for ref in _performers(world.current(key).resource)
                if self._sees(named, world.current(ref))
            }
            included_performers = {r for r in includes if r.startswith("Patient/")}
            self._differs(
                f"Observation?patient={pid}&_include performer", included_performers, performers
            )
            # A visit, what refers to it, and (iterating) whom those name as performers.
            matches, includes, _ = await self._entries(
                "/fhir/Encounter",
                patient=f"Patient/{pid}",
                _revinclude="Observation:encounter",
                **{"_include:iterate": "Observation:performer"},
            )
            visits = self._current(named, self._with_subject("Encounter", {pid}))
            self._differs(f"Encounter?patient={pid}&_revinclude", matches, visits)
            referring = self._current(named, self._referring("Observation", "encounter", visits))
            named_performers = {
                ref
                for key in referring
                for ref in _performers(world.current(key).resource)
                if self._sees(named, world.current(ref))
            }
            self._differs(
                f"Encounter?patient={pid}&_revinclude&_include:iterate",
                includes,
                referring | named_performers,
            )
            matches, includes, _ = await self._entries(
                "/fhir/Patient", _id=pid, _revinclude="Observation:subject"
            )
            shown = self._current(named, {f"Patient/{pid}"})
            self._differs(f"Patient?_id={pid}", matches, shown)
            expected = (
                self._current(named, self._with_subject("Observation", {pid})) if shown else set()
            )
            self._differs(f"Patient?_id={pid}&_revinclude", includes, expected)
            person_patients = world.person_patients([pid])
            status, _ = await self._get(f"/fhir/Patient/{pid}/Observation")
            matches, _, _ = await self._entries(f"/fhir/Patient/{pid}/Observation")
            patient_shown = self._sees(named, world.current(f"Patient/{pid}"))
            expected = (
                self._current(named, self._in_compartment("Observation", person_patients))
                if patient_shown
                else set()
            )
            self._differs(f"Patient/{pid}/Observation", matches, expected)
            matches, includes, total = await self._entries(f"/fhir/Patient/{pid}/$everything")
            expected = set()
            if patient_shown:
                for resource_type in TYPES:
                    expected |= self._current(
                        named, self._in_compartment(resource_type, person_patients)
                    )
            self._differs(f"Patient/{pid}/$everything", matches, expected)
        # Two persons in one request.
        for first, second in zip(patients, patients[1:], strict=False):
            named = model.named_patients(world, [first, second])
            matches, _, _ = await self._entries(
                "/fhir/Observation", patient=f"Patient/{first},Patient/{second}"
            )
            expected = self._current(named, self._with_subject("Observation", {first, second}))
            self._differs(f"Observation?patient={first},{second}", matches, expected)
        # Chains and _has by citizen ID.
        for person, citizen in world.citizen.items():
            person_patients = world.patients_of(person)
            named = set(person_patients)
            national = f"{CCCD}|{citizen}"
            visible = {
                p for p in person_patients if self._sees(named, world.current(f"Patient/{p}"))
            }
            matches, _, _ = await self._entries(
                "/fhir/Observation", **{"subject.identifier": national}
            )
            expected = self._current(named, self._with_subject("Observation", visible))
            self._differs(f"Observation?subject.identifier={citizen}", matches, expected)
            matches, _, _ = await self._entries(
                "/fhir/Patient",
                identifier=national,
                **{"_has:Observation:subject:code": "8867-4"},
            )
            with_observations = {
                f"Patient/{p}"
                for p in visible
                if self._current(named, self._with_subject("Observation", {p}))
            }
            self._differs(f"Patient?identifier={citizen}&_has", matches, with_observations)

    async def bundles(self) -> None:
        keys = sorted(self.world.versions)
        for kind in ("batch", "transaction"):
            entries = [{"request": {"method": "GET", "url": key}} for key in keys]
            response = await self.client.post(
                "/fhir",
                json={"resourceType": "Bundle", "type": kind, "entry": entries},
                headers=FHIR_JSON,
            )
            assert response.status_code < 500, response.text
            if kind == "transaction" and response.status_code != 200:
                # A transaction stops at its first refused entry: the caller saw nothing.
                continue
            statuses = [e["response"]["status"].split()[0] for e in response.json()["entry"]]
            for key, status in zip(keys, statuses, strict=True):
                current = self.world.current(key)
                shown = self._sees(self._named_by(key), current)
                got = status in ("200", "410") and int(status)
                expected = (410 if current.deleted else 200) if shown else False
                self._differs(f"{kind} GET {key}", got, expected)

    def _with_subject(self, resource_type: str, patient_ids: set[str]) -> set[str]:
        """Return the keys of a type's records whose current subject is one of these."""
        wanted = {f"Patient/{p}" for p in patient_ids}
        found = set()
        for key, versions in self.world.versions.items():
            resource = versions[-1].resource
            if key.startswith(f"{resource_type}/") and resource:
                if (resource.get("subject") or {}).get("reference") in wanted:
                    found.add(key)
        return found

    def _referring(self, resource_type: str, element: str, targets: set[str]) -> set[str]:
        """Return the keys of a type's records whose current `element` refers to a target."""
        found = set()
        for key, versions in self.world.versions.items():
            resource = versions[-1].resource
            if key.startswith(f"{resource_type}/") and resource:
                if (resource.get(element) or {}).get("reference") in targets:
                    found.add(key)
        return found

    def _in_compartment(self, resource_type: str, patient_ids: set[str]) -> set[str]:
        """Return the keys of a type's records in any of these patients' compartments."""
        return {
            key
            for key, versions in self.world.versions.items()
            if key.startswith(f"{resource_type}/") and versions[-1].patients & patient_ids
        }


def _performers(resource: dict[str, Any] | None) -> set[str]:
    """Return the Patient references an Observation names as performers."""
    refs = [p.get("reference", "") for p in (resource or {}).get("performer") or ()]
    return {r for r in refs if r.startswith("Patient/")}


def _etag(entry: dict[str, Any]) -> int:
    return int(entry["response"]["etag"].removeprefix('W/"').removesuffix('"'))


def _version_of(entry: dict[str, Any]) -> tuple[str, int]:
    url = entry["fullUrl"].split("/fhir/")[1]
    return url, _etag(entry)


async def test_every_path_returns_exactly_what_the_model_allows(built: Built) -> None:
    limit = asyncio.Semaphore(4)

    async def check(caller: Caller, client: httpx.AsyncClient) -> list[str]:
        async with limit:
            checker = Checker(built, caller, client)
            await checker.reads()
            await checker.histories()
            await checker.searches()
            await checker.bundles()
            return checker.differences

    found = await asyncio.gather(*(check(caller, client) for caller, client in built.callers))
    differences = [d for each in found for d in each]
    shown = "\n".join(differences[:25])
    assert not differences, f"seed {built.seed}: {len(differences)} differences\n{shown}"


async def test_the_world_holds_what_the_model_needs(built: Built) -> None:
    """The generated world exercises each case the model is about (else the test proves
    less than it claims)."""
    world = built.world
    versions = world.all_versions()
    assert any(len(v.patients) > 1 for v in versions), "a record concerning two persons"
    assert any(v.deleted for v in versions), "a deleted record"
    moved = [
        key
        for key, vs in world.versions.items()
        if len({frozenset(v.patients) for v in vs if not v.deleted}) > 1
    ]
    assert moved, "a record moved to another patient"
    relabelled = [vs for vs in world.versions.values() if len(vs) > 1 and not vs[-1].deleted]
    assert any(vs[-1].labels() - vs[0].labels() for vs in relabelled), "a label added"
    assert any(vs[0].labels() - vs[-1].labels() for vs in relabelled), "a label taken off"
    assert any(g.writer is None for g in world.consents), "a consent by the person"
    assert any(g.writer is not None for g in world.consents), "a consent by a facility"
    assert len({g.kind.name for g in world.consents}) >= 6, "consents of many kinds"
