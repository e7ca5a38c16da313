"""The outbox and the sender on their own: idempotent enqueue, states, backoff, refusals."""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import Rejection
from adapters.sync.outbox import Outbox
from adapters.sync.run import run
from adapters.sync.sender import (
    HubUnusable,
    Sender,
    backoff_seconds,
    classify,
    retry_after_seconds,
)
from adapters.sync.settings import SyncSettings

HUB = "http://hub.test/fhir"
SETTINGS = SyncSettings(backoff_base_seconds=1.0, backoff_max_seconds=30.0, hold_attempts=3)


def bundle(value: str) -> dict[str, Any]:
    """Return a transaction Bundle writing one Patient by its identifier."""
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": value}]}
    request = {"method": "PUT", "url": f"Patient?identifier=urn:mrn|{value}"}
    entry = {"fullUrl": f"urn:uuid:{value}", "resource": patient, "request": request}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}


def outcome(text: str) -> dict[str, Any]:
    """Return an OperationOutcome with one error."""
    issue = {"severity": "error", "code": "invalid", "diagnostics": text}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    """Return an empty outbox file."""
    return Outbox(tmp_path / "outbox.sqlite")


def sender(outbox: Outbox, answer: Callable[[httpx.Request], httpx.Response]) -> Sender:
    """Return a sender whose hub answers with a function of the request; jitter fixed at 0."""
    client = httpx.Client(transport=httpx.MockTransport(answer))
    return Sender(outbox, client, HUB, SETTINGS, rng=lambda: 0.0)


def sent_values(requests: list[httpx.Request]) -> list[str]:
    """Return the Patient identifier each request carried, in order."""
    return [
        json.loads(r.content)["entry"][0]["resource"]["identifier"][0]["value"] for r in requests
    ]


def test_enqueuing_the_same_record_twice_keeps_one_row(outbox: Outbox) -> None:
    assert outbox.enqueue_bundle("f#1", "f record 1", bundle("a"))
    assert not outbox.enqueue_bundle("f#1", "f record 1", bundle("a"))
    assert outbox.enqueue_rejection("f#2", "f record 2", "no XML1")
    assert not outbox.enqueue_rejection("f#2", "f record 2", "no XML1")
    # The same place with new content is a corrected record: sent again.
    assert outbox.enqueue_bundle("f#1", "f record 1", bundle("a2"))
    assert outbox.counts() == {"pending": 2, "sent": 0, "rejected": 1, "refused": 0}


def test_the_outbox_survives_reopening_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    first = Outbox(path)
    first.enqueue_bundle("f#1", "f record 1", bundle("a"))
    first.close()
    again = Outbox(path)
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.counts()["pending"] == 1


def test_states_move_from_pending_to_sent_or_refused(outbox: Outbox) -> None:
    for value in "abc":
        outbox.enqueue_bundle(f"f#{value}", f"record {value}", bundle(value))
    a, b, c = outbox.due(10)
    outbox.mark_sent(a.id, 200)
    outbox.mark_refused(b.id, 422, "422: bad", outcome("bad"))
    outbox.mark_retry(c.id, 1, at=2e12, error="503", status=503)
    assert outbox.counts() == {"pending": 1, "sent": 1, "rejected": 0, "refused": 1}
    assert outbox.due(10) == []  # c waits for its next attempt
    assert outbox.next_due_at() == 2e12
    (problem,) = outbox.problems()
    assert problem["state"] == "refused"
    assert problem["outcome"]["issue"][0]["diagnostics"] == "bad"
    assert outbox.requeue_refused() == 1
    assert outbox.counts()["pending"] == 2


def test_backoff_doubles_up_to_the_cap_and_jitters_the_upper_half() -> None:
    assert [backoff_seconds(n, SETTINGS, rng=lambda: 0.0) for n in (1, 2, 3, 6, 9)] == [
        0.5,
        1.0,
        2.0,
        15.0,
        15.0,
    ]
    assert backoff_seconds(3, SETTINGS, rng=lambda: 1.0) == 4.0


def test_backoff_honours_retry_after_in_seconds_and_as_a_date() -> None:
    assert backoff_seconds(1, SETTINGS, retry_after=7.0) == 7.0
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Thu, 01 Jan 2099 00:00:10 GMT", now=4070908800.0) == 10.0
    assert retry_after_seconds("soon") is None
    answer = classify(
        httpx.Response(429, headers={"retry-after": "3"}, request=httpx.Request("POST", HUB))
    )
    assert (answer.kind, answer.retry_after) == ("retry", 3.0)


def test_a_429_pauses_everything_for_retry_after_and_keeps_the_order(outbox: Outbox) -> None:
    for value in "abc":
        outbox.enqueue_bundle(f"f#{value}", value, bundle(value))
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 2:
            return httpx.Response(429, headers={"retry-after": "5"})
        return httpx.Response(200, json={"resourceType": "Bundle"})

    s = sender(outbox, answer)
    assert s.drain(10) == 1
    assert s.drain(10) == 0  # paused: nothing sent before Retry-After has passed
    assert s.tally.waiting_until - time.time() == pytest.approx(5.0, abs=0.5)
    (b, c) = outbox.due(10, now=9e12)
    assert b.attempts == 1 and c.attempts == 0
    s.tally.waiting_until = 0
    outbox.db.execute("UPDATE outbox SET next_attempt_at = 0")
    assert s.drain(10) == 2
    assert sent_values(requests) == ["a", "b", "b", "c"]


def test_a_refused_record_is_kept_with_its_outcome_and_the_others_go_on(outbox: Outbox) -> None:
    for value in "abc":
        outbox.enqueue_bundle(f"f#{value}", f"record {value}", bundle(value))

    def answer(request: httpx.Request) -> httpx.Response:
        if sent_values([request]) == ["b"]:
            return httpx.Response(422, json=outcome("Patient.gender: unknown code"))
        return httpx.Response(200, json={"resourceType": "Bundle"})

    s = sender(outbox, answer)
    assert s.drain(10) == 3
    assert outbox.counts() == {"pending": 0, "sent": 2, "rejected": 0, "refused": 1}
    (problem,) = outbox.problems()
    assert problem["source"] == "record b"
    assert problem["http_status"] == 422
    assert "Patient.gender: unknown code" in problem["reason"]
    assert problem["outcome"]["resourceType"] == "OperationOutcome"


def test_network_errors_and_5xx_are_retried_with_backoff(outbox: Outbox) -> None:
    outbox.enqueue_bundle("f#a", "a", bundle("a"))
    answers = iter([httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(200)])

    def answer(request: httpx.Request) -> httpx.Response:
        found = next(answers)
        if isinstance(found, Exception):
            raise found
        return found

    s = sender(outbox, answer)
    for attempt, wait in ((1, 0.5), (2, 1.0)):
        assert s.drain(10) == 0
        row = outbox.db.execute(
            "SELECT attempts, next_attempt_at, updated_at FROM outbox"
        ).fetchone()
        assert row[0] == attempt
        assert row[1] - row[2] == pytest.approx(wait, abs=0.05)
        s.tally.waiting_until = 0
        outbox.db.execute("UPDATE outbox SET next_attempt_at = 0")
    assert s.drain(10) == 1
    assert outbox.counts()["sent"] == 1


def test_a_record_failing_too_often_stops_holding_the_others_back(outbox: Outbox) -> None:
    outbox.enqueue_bundle("f#a", "a", bundle("a"))
    outbox.enqueue_bundle("f#b", "b", bundle("b"))
    outbox.db.execute("UPDATE outbox SET attempts = 2 WHERE record_key = 'f#a'")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if sent_values([request]) == ["a"] else 200)

    s = sender(outbox, answer)
    assert s.drain(10) == 1
    assert outbox.counts() == {"pending": 1, "sent": 1, "rejected": 0, "refused": 0}


def test_a_wrong_address_stops_the_run_without_marking_anything(outbox: Outbox) -> None:
    outbox.enqueue_bundle("f#a", "a", bundle("a"))
    s = sender(outbox, lambda request: httpx.Response(404, json=outcome("no such path")))
    with pytest.raises(HubUnusable, match="not a FHIR base"):
        s.drain(10)
    s = sender(outbox, lambda request: httpx.Response(401, json=outcome("who are you")))
    with pytest.raises(HubUnusable, match="401"):
        s.drain(10)
    assert outbox.counts()["pending"] == 1


def test_a_404_from_a_real_fhir_base_refuses_the_record_only(outbox: Outbox) -> None:
    outbox.enqueue_bundle("f#a", "a", bundle("a"))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json={"resourceType": "CapabilityStatement"})
        return httpx.Response(404, json=outcome("Unknown resource type: Patientt"))

    assert sender(outbox, answer).drain(10) == 1
    assert outbox.counts()["refused"] == 1


def test_a_run_enqueues_rejections_and_sends_bundles(outbox: Outbox) -> None:
    outputs = iter([bundle("a"), Rejection("file HOSO 2", "no XML1"), bundle("c")])
    s = sender(outbox, lambda request: httpx.Response(200))
    counts, failure = run(outputs, "xml130:file", outbox, s, batch=2, progress_seconds=0.01)
    assert failure is None
    assert (counts.parsed, counts.new, counts.rejected, s.tally.sent) == (3, 3, 1, 2)
    (problem,) = outbox.problems()
    assert (problem["source"], problem["reason"]) == ("file HOSO 2", "no XML1")
    again = iter([bundle("a"), Rejection("file HOSO 2", "no XML1"), bundle("c")])
    counts, _ = run(again, "xml130:file", outbox, s, batch=2, progress_seconds=0.01)
    assert (counts.parsed, counts.new) == (3, 0)
