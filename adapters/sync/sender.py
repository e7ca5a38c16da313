"""Send the outbox's pending Bundles to the hub, one transaction per request, in order.

One Bundle per request: a transaction is all-or-nothing, so merging records would let one bad
record refuse its neighbours. Requests go one at a time, oldest first, so that a record's
later version (an ADT A08 after its A01) reaches the hub after the earlier one. A network
error, a 5xx, 408 or 429 pauses the whole sender (the hub, not the record, is at fault) with
exponential backoff and jitter, or for as long as `Retry-After` asks; a record still failing
after `hold_attempts` stops holding the others back. Any other 4xx refuses that record alone:
it is kept with the hub's OperationOutcome, and sending goes on. 401, 403, 404, 405 and 415
mean the hub or its address is wrong, not the record: the run stops and nothing is marked;
so does a 404 when the address does not serve a CapabilityStatement at `metadata` (a 404
from a real FHIR base is about the record: an unknown resource type, say).
"""

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .credentials import Credentials, CredentialsRefused
from .outbox import Outbox, Row
from .settings import SyncSettings

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = {408, 425, 429}
FATAL_STATUSES = {401, 403, 405, 415}
# A Retry-After beyond this is a misconfigured hub, not a plan.
MAX_RETRY_AFTER_SECONDS = 3600.0


class HubUnusable(Exception):
    """The hub answered in a way no record can fix (wrong address, credentials refused)."""


@dataclass(frozen=True)
class Answer:
    """What one attempt at one record came to."""

    kind: str  # sent, refused, retry
    status: int | None
    reason: str = ""
    outcome: Any = None
    retry_after: float | None = None


@dataclass
class Tally:
    """Counts of this run's sending."""

    sent: int = 0
    refused: int = 0
    retried: int = 0
    last_error: str = ""
    waiting_until: float = 0.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Return the delay a Retry-After header asks for (seconds or an HTTP date), if readable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def backoff_seconds(
    attempts: int,
    settings: SyncSettings,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Return how long to wait before attempt `attempts + 1`: what Retry-After asks if given,
    else base * 2**(attempts-1), capped, with the upper half jittered."""
    if retry_after is not None:
        return retry_after
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempts - 1))
    return ceiling / 2 + rng() * ceiling / 2


def outcome_reason(outcome: Any) -> str:
    """Return the issues of an OperationOutcome in one line."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return ""
    issues = []
    for issue in outcome.get("issue", []):
        if isinstance(issue, dict):
            text = issue.get("diagnostics") or issue.get("details", {}).get("text") or ""
            where = ", ".join(issue.get("expression", []) or [])
            issues.append(f"{text} ({where})" if where else str(text or issue.get("code", "")))
    return "; ".join(issues)


def classify(response: httpx.Response) -> Answer:
    """Return what a hub's answer means for the record: sent, refused, or to retry."""
    status = response.status_code
    if 200 <= status < 300:
        return Answer("sent", status)
    try:
        outcome = response.json()
    except ValueError:
        outcome = None
    reason = outcome_reason(outcome) or response.text[:500] or response.reason_phrase
    reason = f"{status} {response.reason_phrase}: {reason}"
    if status in FATAL_STATUSES:
        raise HubUnusable(f"the hub at {response.request.url} answered {reason}")
    if status >= 500 or status in RETRY_STATUSES:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        return Answer("retry", status, reason, retry_after=wait)
    return Answer("refused", status, reason, outcome)


class Sender:
    """Drains an outbox into a hub's FHIR base."""

    def __init__(
        self,
        outbox: Outbox,
        client: httpx.Client,
        endpoint: str,
        settings: SyncSettings,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.endpoint = endpoint
        self.settings = settings
        self.rng = rng
        self.tally = Tally()
        self._fhir_base: bool | None = None
        self.credentials: Credentials | None = None
        if settings.client_id and settings.client_secret:
            self.credentials = Credentials(
                client, endpoint, settings.client_id, settings.client_secret
            )

    def post(self, row: Row) -> Answer:
        """Send one record's Bundle and say what became of it."""
        try:
            response = self._send(row)
            if response.status_code == 401 and self.credentials is not None:
                self.credentials.forget()  # revoked, or the hub's key changed: ask again once
                response = self._send(row)
        except httpx.TransportError as error:
            return Answer("retry", None, f"cannot reach the hub: {error!r}")
        except CredentialsRefused as error:
            raise HubUnusable(str(error)) from error
        answer = classify(response)
        if answer.status == 404 and not self.is_fhir_base():
            raise HubUnusable(f"{self.endpoint} is not a FHIR base (POST answered {answer.reason})")
        return answer

    def _send(self, row: Row) -> httpx.Response:
        headers = {"content-type": FHIR_JSON, "accept": FHIR_JSON}
        if self.credentials is not None:
            headers |= self.credentials.header()
        return self.client.post(self.endpoint, content=row.payload.encode(), headers=headers)

    def is_fhir_base(self) -> bool:
        """Tell whether the endpoint serves a CapabilityStatement (asked once per run)."""
        if self._fhir_base is None:
            try:
                found = self.client.get(f"{self.endpoint}/metadata").json()
                self._fhir_base = found.get("resourceType") == "CapabilityStatement"
            except (httpx.HTTPError, ValueError, AttributeError):
                self._fhir_base = False
        return self._fhir_base

    def drain(self, limit: int, tick: Callable[[], object] = lambda: None) -> int:
        """Send up to `limit` due records in order; stop early when the hub needs a pause.
        Return the number of records handled (sent or refused)."""
        now = time.time()
        if now < self.tally.waiting_until:
            return 0
        handled = 0
        for row in self.outbox.due(limit, now):
            answer = self.post(row)
            if answer.kind == "sent":
                self.outbox.mark_sent(row.id, answer.status or 200)
                self.tally.sent += 1
            elif answer.kind == "refused":
                self.outbox.mark_refused(
                    row.id, answer.status or 400, answer.reason, answer.outcome
                )
                self.tally.refused += 1
            else:
                attempts = row.attempts + 1
                wait = backoff_seconds(attempts, self.settings, answer.retry_after, self.rng)
                at = time.time() + wait
                self.outbox.mark_retry(row.id, attempts, at, answer.reason, answer.status)
                self.tally.retried += 1
                self.tally.last_error = answer.reason
                tick()
                if attempts < self.settings.hold_attempts:
                    self.tally.waiting_until = at
                    break
                continue
            handled += 1
            self.tally.last_error = ""
            tick()
        return handled
