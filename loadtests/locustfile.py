"""Locust scenarios: hospitals posting transaction bundles to the hub and reading patients back,
and clinicians finding a patient by citizen ID and reading their record and labs."""

import hashlib
import json
import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, task

# Locust puts only this folder on sys.path; the adapters live at the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulate.sample import CCCD_SYSTEM, LOINC_SYSTEM, sample_bundles  # noqa: E402

Bundle = dict[str, Any]
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
# Set to replay a run's data; by default every run sends records the hub has not seen.
RUN_SEED = os.environ.get("EHRHUB_LOCUST_SEED") or str(random.SystemRandom().getrandbits(64))
RESEND_ONE_IN = 5
# Bundles kept per user for re-sends: enough to pick from, bounded memory.
HISTORY_SIZE = 50
# Patients each clinician sends on start, and then looks up.
CLINIC_PATIENTS = 5


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
    """A hospital that sends new patients' records, sometimes re-sends old ones, and reads back."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        """Give the hospital its own seed, an empty history and no known patients."""
        self.seed = seed_of(RUN_SEED, os.getpid(), id(self))
        self.rng = random.Random(self.seed)
        self.sent_count = 0
        self.history: list[Bundle] = []
        self.patient_ids: list[str] = []

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
            pid = self.rng.choice(self.patient_ids)
            self.client.get(f"/fhir/Patient/{pid}", headers=FHIR_JSON, name="/fhir/Patient/[id]")

    def send_new(self) -> None:
        """Post a bundle of a patient this hospital has not sent before."""
        self.sent_count += 1
        bundle = sample_bundles(1, seed=seed_of(self.seed, self.sent_count))[0]
        answer = self.post(bundle, "/fhir [new bundle]", must_match=False)
        if answer is None:
            return
        self.history = [*self.history[-(HISTORY_SIZE - 1) :], bundle]
        pid = patient_id(bundle, answer)
        if pid:
            self.patient_ids = [*self.patient_ids[-(HISTORY_SIZE - 1) :], pid]

    def resend(self, bundle: Bundle) -> None:
        """Re-send a bundle the hub already has: every entry must match, none be created."""
        self.post(bundle, "/fhir [re-send]", must_match=True)

    def post(self, bundle: Bundle, name: str, *, must_match: bool) -> Bundle | None:
        """Post a transaction; return its response Bundle, or None after marking a failure."""
        body = json.dumps(bundle).encode()
        with self.client.post(
            "/fhir", data=body, headers=FHIR_JSON, name=name, catch_response=True
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

    On start it sends a few patients of its own (conditional creates: a re-run with the same
    EHRHUB_LOCUST_SEED creates nothing) and keeps what it needs to check the answers: the
    citizen ID, and each Observation's LOINC code and UTC time.
    """

    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        """Seed this clinician's patients."""
        self.seed = seed_of(RUN_SEED, "clinician", os.getpid(), id(self))
        self.rng = random.Random(self.seed)
        self.patients: list[tuple[str, list[tuple[str, datetime]]]] = []
        for bundle in sample_bundles(CLINIC_PATIENTS, seed=self.seed):
            with self.client.post(
                "/fhir",
                data=json.dumps(bundle).encode(),
                headers=FHIR_JSON,
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
        with self.client.get(
            f"/fhir/Patient?identifier={CCCD_SYSTEM}|{cccd}",
            headers=FHIR_JSON,
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
            headers=FHIR_JSON,
            name="/fhir/Patient/[id]/$everything",
        )
        code, taken = self.rng.choice(observations)
        since = taken.date().isoformat()
        expected = sum(1 for c, t in observations if c == code and t.date() >= taken.date())
        with self.client.get(
            f"/fhir/Observation?patient={pid}&code={LOINC_SYSTEM}|{code}&date=ge{since}",
            headers=FHIR_JSON,
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
