"""`ehrhub admin` run as its own process, against the session's database, while an in-process
hub on the same database hands out tokens to what it creates."""

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth.helpers import ask_token, bearer
from live import REPO, START_SECONDS, clean_env, ehrhub, run_ehrhub

from hub.settings import Settings


def admin(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `ehrhub admin ...` on the session's database."""
    return subprocess.run(
        ehrhub("admin", *args, "--mongodb-uri", str(settings.mongodb_uri)),
        cwd=REPO,
        env=clean_env(database=settings.database),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )


def created(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Return the JSON object on the last line of `create-client --json`."""
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    ("role", "flags", "scope"),
    [
        ("admin", ["--name", "Operator"], "system/Location.cruds"),
        ("facility", ["--facility", "79001", "--name", "BV Cho Ray"], "system/*.cruds"),
        (
            "clinician",
            ["--facility", "79001", "--practitioner", "Practitioner/bs-an"],
            "user/*.rs",
        ),
        ("ministry", ["--name", "Cuc CNTT"], ""),
        ("auditor", [], "user/AuditEvent.rs"),
        ("patient", ["--patient", "079085001234"], "patient/*.rs"),
    ],
)
async def test_create_client_for_each_role(
    settings: Settings,
    secured: httpx.AsyncClient,
    role: str,
    flags: list[str],
    scope: str,
) -> None:
    result = admin(settings, "create-client", "--role", role, *flags, "--json")

    client = created(result)
    assert client["role"] == role
    assert client["client_id"].startswith(f"{role}-")
    response = await ask_token(
        secured, client_id=client["client_id"], client_secret=client["client_secret"]
    )
    assert response.status_code == 200, response.text
    assert scope in response.json()["scope"]


async def test_text_output_names_the_secret_once(settings: Settings) -> None:
    result = admin(settings, "create-client", "--role", "auditor", "--name", "Thanh tra")

    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines()[:2])
    assert set(lines) == {"client_id", "client_secret"}
    assert "cannot show it again" in result.stdout


async def test_a_person_logs_in_with_the_secret_or_a_password_from_stdin(
    settings: Settings, secured: httpx.AsyncClient
) -> None:
    default = created(
        admin(
            settings,
            "create-client",
            "--role",
            "clinician",
            "--facility",
            "79001",
            "--username",
            "bs.binh.cli",
            "--json",
        )
    )
    own = created(
        admin(
            settings,
            "create-client",
            "--role",
            "patient",
            "--patient",
            "079090000001",
            "--username",
            "citizen.cli",
            "--password-stdin",
            "--json",
            stdin="mật khẩu dài của tôi\n",
        )
    )

    by_secret = await secured.post(
        "/auth/login", data={"username": "bs.binh.cli", "password": default["client_secret"]}
    )
    by_password = await secured.post(
        "/auth/login", data={"username": "citizen.cli", "password": "mật khẩu dài của tôi"}
    )

    assert by_secret.status_code == 200, by_secret.text
    assert by_password.status_code == 200, by_password.text
    assert own["username"] == "citizen.cli"


async def test_a_username_is_taken_once(settings: Settings) -> None:
    first = admin(settings, "create-client", "--role", "auditor", "--username", "once.only")
    second = admin(settings, "create-client", "--role", "ministry", "--username", "ONCE.only")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert "the username 'once.only' is taken" in second.stderr


async def test_list_clients_shows_no_secret(settings: Settings) -> None:
    client = created(
        admin(settings, "create-client", "--role", "facility", "--facility", "01001", "--json")
    )

    listed = admin(settings, "list-clients", "--json")
    text = admin(settings, "list-clients")

    assert listed.returncode == 0, listed.stderr
    rows = {row["client_id"]: row for row in json.loads(listed.stdout)}
    assert rows[client["client_id"]]["facility"] == "01001"
    for output in (listed.stdout, text.stdout):
        assert client["client_secret"] not in output
        assert "argon2" not in output and "hash" not in output
    assert client["client_id"] in text.stdout


async def test_revoke_client_stops_its_tokens(
    settings: Settings, secured: httpx.AsyncClient
) -> None:
    client = created(
        admin(settings, "create-client", "--role", "facility", "--facility", "01002", "--json")
    )
    token = (
        await ask_token(
            secured, client_id=client["client_id"], client_secret=client["client_secret"]
        )
    ).json()["access_token"]

    revoked = admin(settings, "revoke-client", client["client_id"])
    read = await secured.get("/fhir/Patient", headers=bearer(token))
    again = await ask_token(
        secured, client_id=client["client_id"], client_secret=client["client_secret"]
    )

    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {client['client_id']}" in revoked.stdout
    assert read.status_code == 401
    assert again.status_code == 401
    listed = json.loads(admin(settings, "list-clients", "--json").stdout)
    assert [r["revoked_at"] for r in listed if r["client_id"] == client["client_id"]][0]


def test_revoke_an_unknown_client(settings: Settings) -> None:
    result = admin(settings, "revoke-client", "facility-nobody")

    assert result.returncode == 1
    assert "no client has the id 'facility-nobody'" in result.stderr


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--role", "facility"], "a facility needs --facility"),
        (["--role", "clinician"], "a clinician needs --facility"),
        (["--role", "patient"], "a patient needs --patient"),
        (["--role", "ministry", "--facility", "01001"], "acts for no facility"),
        (["--role", "facility", "--facility", "01001", "--username", "u"], "no --username"),
        (["--role", "admin", "--patient", "079085001234"], "--patient is for the patient role"),
        (["--role", "auditor", "--practitioner", "Practitioner/1"], "for the clinician role"),
        (["--role", "clinician", "--facility", "01001", "--practitioner", "bs an"], "neither"),
        (["--role", "facility", "--facility", "bad code!"], "is not a facility code"),
        (["--role", "auditor", "--username", "bad name"], "--username 'bad name'"),
        (["--role", "facility", "--facility", "01001", "--jwks", "/nonexistent.json"], "--jwks"),
        (["--role", "superuser"], "invalid choice: 'superuser'"),
        ([], "the following arguments are required: --role"),
    ],
)
def test_create_client_refuses_with_the_reason(tmp_path: Path, flags: list[str], says: str) -> None:
    data = tmp_path / "data"

    result = run_ehrhub("admin", "create-client", *flags, "--data-dir", str(data))

    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr
    assert not data.exists(), "a command line that cannot work starts no database"


def test_a_jwks_file_with_a_private_key_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "d": "c"}]})
    )

    result = run_ehrhub(
        "admin",
        "create-client",
        "--role",
        "facility",
        "--facility",
        "01001",
        "--jwks",
        str(keys),
        "--data-dir",
        str(tmp_path / "data"),
    )

    assert result.returncode == 2
    assert "private key" in result.stderr
