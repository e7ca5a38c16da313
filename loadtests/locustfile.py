"""Locust scenarios: hospitals posting the transaction bundles their adapters make (XML130
claim episodes, HL7 v2 ADT and ORU messages) and reading patients back, clinicians finding
a patient by citizen ID and reading their record and labs, and the ministry reading its reports.

Every user calls with tokens, as the hub requires: its clients are registered on the hub's
database with `ehrhub admin create-client`, which finds it as `ehrhub admin` does (EHRHUB_DATA_DIR,
default .ehrhub, or EHRHUB_MONGODB_URI and EHRHUB_DATABASE)."""

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, task

# Locust puts only this folder on sys.path; the adapters live at the repository root.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters import hl7v2, xml130  # noqa: E402
from adapters.base import FACILITY_SYSTEM, Facility, Rejection  # noqa: E402
from adapters.simulate.sample import CCCD_SYSTEM, LOINC_SYSTEM, sample_bundles  # noqa: E402
from adapters.xml130.generate import episode, submission  # noqa: E402

Bundle = dict[str, Any]
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
# Set to replay a run's data; by default every run sends records the hub has not seen.
RUN_SEED = os.environ.get("EHRHUB_LOCUST_SEED") or str(random.SystemRandom().getrandbits(64))
RESEND_ONE_IN = 5
# Bundles kept per user for re-sends: enough to pick from, bounded memory.
HISTORY_SIZE = 50
# Patients each clinician sends on start, and then looks up.
CLINIC_PATIENTS = 5
# XML130 episodes a hospital converts per round (with one round of its HL7 v2 messages).
EPISODES_PER_ROUND = 10
HL7_FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hl7v2"
# The fixture messages a hospital's HL7 v2 feed sends: admissions and lab results.
HL7_FEED = ("ADT", "ORU", "LAB-ORU")
# The ministry's reports answer JSON or CSV, not FHIR.
REPORT_JSON = {"Accept": "application/json"}


class Credentials:
    """A client registered on the hub's database with `ehrhub admin create-client`, and the
    token it currently has, asked for again when half its life is gone."""

    def __init__(self, user: FastHttpUser, *flags: str) -> None:
        command = [sys.executable, "-m", "hub.cli", "admin", "create-client", *flags, "--json"]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ehrhub admin create-client {' '.join(flags)}: {done.stderr}")
        made = json.loads(done.stdout.strip().splitlines()[-1])
        self.user = user
        self.form = {
            "grant_type": "client_credentials",
            "client_id": made["client_id"],
            "client_secret": made["client_secret"],
        }
        self.token = ""
        self.renew_at = 0.0

    def headers(self) -> dict[str, str]:
        """Return the FHIR headers with the client's bearer token."""
        if time.monotonic() >= self.renew_at:
            response = self.user.client.post("/auth/token", data=self.form, name="/auth/token")
            body = response.json()
            self.token = body["access_token"]
            self.renew_at = time.monotonic() + body["expires_in"] / 2
        return FHIR_JSON | {"Authorization": f"Bearer {self.token}"}


def facility_of(bundle: Bundle) -> str:
    """Return the code of the facility whose Organization a Bundle carries."""
    return next(
        str(identifier["value"])
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Organization"
        for identifier in entry["resource"].get("identifier", [])
        if identifier.get("system") == FACILITY_SYSTEM
    )


def at_facility(bundle: Bundle, code: str) -> Bundle:
    """Return a sample Bundle as the facility `code` sends it: its Organization is that one."""
    for entry in bundle["entry"]:
        for identifier in entry["resource"].get("identifier", []):
            if identifier.get("system") == FACILITY_SYSTEM:
                identifier["value"] = code
    return bundle


def hl7_feed() -> list[tuple[str, str]]:
    """Return the ADT and ORU fixture messages' texts, with their file names."""
    paths = sorted(p for p in HL7_FIXTURES.glob("*.hl7") if p.name.startswith(HL7_FEED))
    return [(p.name, p.read_bytes().decode("utf-8", errors="replace")) for p in paths]


def adapter_bundles(
    seed: int, code: str, round_no: int, feed: list[tuple[str, str]]
) -> list[Bundle]:
    """Return one round of a hospital's adapter-produced Bundles, in a mixed order: XML130
    episodes from the generator and the HL7 v2 feed, both converted by the real adapters.

    Every record is new: the episodes of each round have new numbers (MA_LK, MA_BN), and
    round r of the HL7 v2 messages comes from facility `{code}-{r}`, which scopes its patient,
    visit and order numbers."""
    facility = Facility(code, "Locust hospital")
    first = round_no * EPISODES_PER_ROUND
    tables = [episode(seed, i, code) for i in range(first, first + EPISODES_PER_ROUND)]
    xml = io.BytesIO(submission(code, tables))
    found = [o for o in xml130.parse(xml, facility) if not isinstance(o, Rejection)]
    hl7_facility = Facility(f"{code}-{round_no}", "Locust hospital")
    for name, text in feed:
        found += [o for o in hl7v2.parse(text, hl7_facility, name) if not isinstance(o, Rejection)]
    random.Random(f"{seed}/{round_no}").shuffle(found)
    return found


def seed_of(*parts: object) -> int:
    """Return a 63-bit seed unique to its parts, so no two users send the same records."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def entry_statuses(response_bundle: Bundle) -> list[str]:
    """Return the status of every entry of a transaction-response."""
    return [entry.get("response", {}).get("status", "") for entry in response_bundle["entry"]]


def patient_id(sent: Bundle, response_bundle: Bundle) -> str | None:
    """Return the id of the Patient a transaction created or matched, from its location."""
    for request, answer in zip(sent["entry"], response_bundle["entry"], strict=True):
        if request["resource"]["resourceType"] == "Patient":
            location = answer.get("response", {}).get("location", "")
            # "Patient/{id}/_history/{vid}", relative or absolute.
            return location.rpartition("Patient/")[2].split("/")[0] or None
    return None


class HospitalSync(FastHttpUser):
    """A hospital that sends new records through its adapters (XML130 episodes, HL7 v2 ADT and
    ORU messages), sometimes re-sends old ones, and reads back."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        """Give the hospital its own seed and facility code, and convert its first records."""
        self.seed = seed_of(RUN_SEED, os.getpid(), id(self))
        self.rng = random.Random(self.seed)
        # Its own facility: no two hospitals write the same Organization, Practitioner, ...
        self.code = f"LT{self.seed:016x}"
        self.feed = hl7_feed()
        self.rounds = 0
        self.pending: list[Bundle] = []
        self.convert_round()
        self.history: list[Bundle] = []
        # Each Patient read back with a token of the facility that sent it.
        self.patient_ids: list[tuple[str, str]] = []
        self.facilities: dict[str, Credentials] = {}

    def system_of(self, code: str) -> Credentials:
        """Return the client of one of this hospital's facility codes, registered on first use."""
        if code not in self.facilities:
            self.facilities[code] = Credentials(self, "--role", "facility", "--facility", code)
        return self.facilities[code]

    def convert_round(self) -> None:
        """Convert the next round of this hospital's records into Bundles to send."""
        self.pending = adapter_bundles(self.seed, self.code, self.rounds, self.feed)
        self.rounds += 1

    @task(4)
    def post_bundle(self) -> None:
        """Send a new bundle, or one time in five re-send an earlier one."""
        if self.history and self.rng.randrange(RESEND_ONE_IN) == 0:
            self.resend(self.rng.choice(self.history))
        else:
            self.send_new()

    @task(1)
    def read_patient(self) -> None:
        """Read back a Patient that this hospital created."""
        if self.patient_ids:
            code, pid = self.rng.choice(self.patient_ids)
            headers = self.system_of(code).headers()
            self.client.get(f"/fhir/Patient/{pid}", headers=headers, name="/fhir/Patient/[id]")

    def send_new(self) -> None:
        """Post an adapter-produced bundle this hospital has not sent before."""
        if not self.pending:
            self.convert_round()
        bundle = self.pending.pop()
        answer = self.post(bundle, "/fhir [new bundle]", must_match=False)
        if answer is None:
            return
        self.history = [*self.history[-(HISTORY_SIZE - 1) :], bundle]
        pid = patient_id(bundle, answer)
        if pid:
            held = (facility_of(bundle), pid)
            self.patient_ids = [*self.patient_ids[-(HISTORY_SIZE - 1) :], held]

    def resend(self, bundle: Bundle) -> None:
        """Re-send a bundle the hub already has: every entry must match, none be created."""
        self.post(bundle, "/fhir [re-send]", must_match=True)

    def post(self, bundle: Bundle, name: str, *, must_match: bool) -> Bundle | None:
        """Post a transaction; return its response Bundle, or None after marking a failure."""
        body = json.dumps(bundle).encode()
        headers = self.system_of(facility_of(bundle)).headers()
        with self.client.post(
            "/fhir", data=body, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:300]}")
                return None
            answer = response.json()
            if len(answer.get("entry", [])) != len(bundle["entry"]):
                response.failure("the transaction-response has not one entry per request entry")
                return None
            created = [s for s in entry_statuses(answer) if not s.startswith("200")]
            if must_match and created:
                response.failure(f"a re-send must create nothing; got {created[:5]}")
                return None
            return answer


class Clinician(FastHttpUser):
    """A clinician who finds a patient by citizen ID, reads the whole record, then their labs.

    On start its hospital's system sends a few patients (conditional creates: a re-run with the
    same EHRHUB_LOCUST_SEED creates nothing), whose records the clinician then reads as any
    clinician reads their own hospital's; it keeps what it needs to check the answers: the
    citizen ID, and each Observation's LOINC code and UTC time.
    """

    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        """Seed this clinician's patients."""
        self.seed = seed_of(RUN_SEED, "clinician", os.getpid(), id(self))
        self.rng = random.Random(self.seed)
        self.patients: list[tuple[str, list[tuple[str, datetime]]]] = []
        code = f"LC{self.seed:016x}"
        system = Credentials(self, "--role", "facility", "--facility", code)
        self.login = Credentials(
            self, "--role", "clinician", "--facility", code, "--practitioner", "Practitioner/locust"
        )
        for bundle in sample_bundles(CLINIC_PATIENTS, seed=self.seed):
            with self.client.post(
                "/fhir",
                data=json.dumps(at_facility(bundle, code)).encode(),
                headers=system.headers(),
                name="/fhir [clinician seed]",
                catch_response=True,
            ) as response:
                if response.status_code != 200:
                    response.failure(f"status {response.status_code}: {response.text[:300]}")
                    continue
            self.patients.append(clinical_facts(bundle))

    @task
    def open_patient(self) -> None:
        """Find a patient by citizen ID, read $everything, and search one lab by code and date."""
        if not self.patients:
            return
        cccd, observations = self.rng.choice(self.patients)
        headers = self.login.headers()
        with self.client.get(
            f"/fhir/Patient?identifier={CCCD_SYSTEM}|{cccd}",
            headers=headers,
            name="/fhir/Patient?identifier=[cccd]",
            catch_response=True,
        ) as response:
            found = response.json().get("entry", []) if response.status_code == 200 else []
            if not found:
                response.failure(f"no Patient with citizen ID {cccd}: {response.text[:300]}")
                return
            pid = found[0]["resource"]["id"]
        self.client.get(
            f"/fhir/Patient/{pid}/$everything",
            headers=headers,
            name="/fhir/Patient/[id]/$everything",
        )
        code, taken = self.rng.choice(observations)
        since = taken.date().isoformat()
        expected = sum(1 for c, t in observations if c == code and t.date() >= taken.date())
        with self.client.get(
            f"/fhir/Observation?patient={pid}&code={LOINC_SYSTEM}|{code}&date=ge{since}",
            headers=headers,
            name="/fhir/Observation?patient&code&date=ge",
            catch_response=True,
        ) as response:
            total = response.json().get("total", -1) if response.status_code == 200 else -1
            # At least: another patient's records may share the citizen ID by chance.
            if total < expected:
                response.failure(f"{total} Observations found, {expected} were sent")


def clinical_facts(bundle: Bundle) -> tuple[str, list[tuple[str, datetime]]]:
    """Return a sample bundle's citizen ID and its Observations' LOINC codes and UTC times."""
    resources = [entry["resource"] for entry in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    cccd = next(i["value"] for i in patient["identifier"] if i["system"] == CCCD_SYSTEM)
    observations = [
        (coding["code"], datetime.fromisoformat(r["effectiveDateTime"]).astimezone(UTC))
        for r in resources
        if r["resourceType"] == "Observation"
        for coding in r["code"]["coding"]
        if coding["system"] == LOINC_SYSTEM
    ]
    return cccd, observations


class Ministry(FastHttpUser):
    """A ministry analyst reading the national reports: coverage (JSON and CSV), the roadmap,
    data quality, and one facility's quality, each answer checked for its report's shape.

    Its client is registered as the others' are (`ehrhub admin create-client --role ministry`).
    It picks a facility for the facility report from the last coverage answer (registered or
    not: the other users' facilities are not in the registry). Its figures mean most on a hub
    whose registry and counters are full: import the registry first (`ehrhub admin facilities
    import FILE`), or fill a database as `loadtests/bench_reports.py` does. Run it alone:

        .venv/bin/locust -f loadtests/locustfile.py --headless -u 2 -r 1 -t 60s \\
            --host http://127.0.0.1:8080 Ministry
    """

    wait_time = between(2.0, 5.0)

    def on_start(self) -> None:
        """Register the analyst's client."""
        self.rng = random.Random(seed_of(RUN_SEED, "ministry", os.getpid(), id(self)))
        self.login = Credentials(self, "--role", "ministry", "--name", "locust ministry")
        self.facilities: list[str] = []

    def report(self, url: str, name: str, *fields: str) -> dict[str, Any] | None:
        """Read a JSON report; mark a failure unless it is 200 and holds `fields`."""
        headers = self.login.headers() | REPORT_JSON
        with self.client.get(url, headers=headers, name=name, catch_response=True) as response:
            body = response.json() if response.status_code == 200 else {}
            missing = [f for f in fields if f not in body]
            if response.status_code != 200 or missing:
                response.failure(
                    f"status {response.status_code}, lacks {missing}: {response.text[:300]}"
                )
                return None
            return dict(body)

    @task(3)
    def coverage(self) -> None:
        """Read the national coverage report, and note its facilities."""
        body = self.report("/reports/coverage", "/reports/coverage", "national", "facilities")
        if body is not None:
            codes = [row["facility"] for row in body["facilities"]]
            self.facilities = codes + body.get("unregistered_submitters", [])

    @task(1)
    def coverage_csv(self) -> None:
        """Download the coverage report as CSV: a header line and a line per facility."""
        with self.client.get(
            "/reports/coverage?format=csv",
            headers=self.login.headers() | REPORT_JSON,
            name="/reports/coverage?format=csv",
            catch_response=True,
        ) as response:
            kind = response.headers.get("content-type") or ""
            if response.status_code != 200 or not kind.startswith("text/csv"):
                response.failure(f"status {response.status_code}, {kind}: {response.text[:300]}")

    @task(1)
    def roadmap(self) -> None:
        """Read where the country stands against the roadmap's milestones."""
        self.report("/reports/roadmap", "/reports/roadmap", "milestones")

    @task(2)
    def quality(self) -> None:
        """Read every facility's data quality scores and ranks."""
        self.report("/reports/quality", "/reports/quality", "national", "facilities")

    @task(2)
    def facility_quality(self) -> None:
        """Read one facility's scores and the rules that cost it points."""
        if not self.facilities:
            return
        code = self.rng.choice(self.facilities)
        self.report(f"/reports/quality/{code}", "/reports/quality/[facility]", "worst_rules")
