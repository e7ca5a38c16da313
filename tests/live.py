"""Run `ehrhub` as its own process, as an operator would, for tests that watch it from outside."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 60.0
STOP_SECONDS = 30.0


def ehrhub(*args: str) -> list[str]:
    """Return the command line that runs `ehrhub` with these arguments from this checkout."""
    return [sys.executable, "-m", "hub.cli", *args]


def run_ehrhub(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `ehrhub` to completion with only the given EHRHUB_* settings; capture its output."""
    return subprocess.run(
        ehrhub(*args),
        cwd=REPO,
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )


# Kept from the test session's environment: its token key file (tests/conftest.py), so that a
# hub started here signs with the session's keys and never writes a key into the checkout.
KEPT = ("EHRHUB_TOKEN_KEY_FILE",)


def clean_env(**settings: str) -> dict[str, str]:
    """Return this environment without the caller's EHRHUB_* settings (but the session's key
    file), plus the given ones."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("EHRHUB_") or name in KEPT
    }
    return env | {f"EHRHUB_{name.upper()}": value for name, value in settings.items()}


def wait_for_output(
    hub: subprocess.Popen[bytes], log: Path, pattern: str, seconds: float = START_SECONDS
) -> re.Match[str]:
    """Wait until the hub's output matches a pattern; fail with its output if it never does."""
    deadline = time.monotonic() + seconds
    while True:
        output = log.read_text(errors="replace")
        if found := re.search(pattern, output):
            return found
        if hub.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"`ehrhub serve` never printed {pattern!r}; its output:\n{output}")
        time.sleep(0.2)


def start_hub(
    log: Path, *args: str, command: str = "serve", **settings: str
) -> subprocess.Popen[bytes]:
    """Start `ehrhub serve` (or another command running the hub) in the background with its
    output going to a file."""
    with log.open("wb") as output:
        return subprocess.Popen(
            ehrhub(command, *args),
            cwd=REPO,
            env=clean_env(**settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop_hub(hub: subprocess.Popen[bytes]) -> int:
    """Stop the hub with SIGTERM, as a service manager does, and return its exit status."""
    hub.send_signal(signal.SIGTERM)
    try:
        return hub.wait(STOP_SECONDS)
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()


def create_client(*flags: str, **settings: str) -> dict[str, str]:
    """Register a client with `ehrhub admin create-client` (`--role`, `--facility`, where the
    database is...) and return what it prints: `client_id`, `client_secret`..."""
    made = run_ehrhub("admin", "create-client", *flags, "--json", **settings)
    assert made.returncode == 0, made.stderr
    found: dict[str, str] = json.loads(made.stdout.strip().splitlines()[-1])
    return found


def bearer_of(base: str, client: dict[str, str]) -> dict[str, str]:
    """Ask the hub at `base` for a token of a client; return the Authorization header."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    response = httpx.post(f"{base.rstrip('/')}/auth/token", data=form)
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def sync_credentials(client: dict[str, str]) -> dict[str, str]:
    """Return the settings that give `ehrhub sync` and `ehrhub mllp` a client's credentials."""
    return {"sync_client_id": client["client_id"], "sync_client_secret": client["client_secret"]}
