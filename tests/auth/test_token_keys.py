"""The token keys: a file only the hub's user may read, never the database; key ids, and a
rotation that neither stops the hub nor the tokens signed before it."""

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from auth.helpers import bearer, register, token_for
from live import run_ehrhub
from support import another_hub, hub_client

from hub.auth.keys import KeyFileError
from hub.auth.tokens import SIGNING_KEY_ID

REPO = Path(__file__).resolve().parents[2]


def mode_of(path: Path) -> int:
    """Return a file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def kid_of(token: str) -> str:
    """Return the key id in a token's header."""
    return str(jwt.get_unverified_header(token)["kid"])


async def test_the_key_file_is_the_hubs_alone(secured_app: Any, secured: httpx.AsyncClient) -> None:
    path = secured_app.state.settings.token_key_file
    assert path.is_file() and mode_of(path) == 0o600
    assert REPO not in path.resolve().parents, "tests must not write key files into the repo"
    identity, secret = await register(secured_app, "facility")

    token = await token_for(secured, identity, secret)

    keys = json.loads(path.read_text())
    assert kid_of(token) == keys["signer"] in {k["kid"] for k in keys["keys"]}
    assert await secured_app.state.mongo.meta.find_one({"_id": SIGNING_KEY_ID}) is None


async def test_a_key_left_in_the_database_is_removed_at_start(app: Any) -> None:
    """A hub upgraded from one that kept its key in `meta` removes it: whoever reads the
    database must not be able to sign tokens."""
    old = base64.b64encode(os.urandom(64)).decode()
    await app.state.mongo.meta.insert_one({"_id": SIGNING_KEY_ID, "key": old})

    async with another_hub(app):
        left = await app.state.mongo.meta.find_one({"_id": SIGNING_KEY_ID})

    assert left is None


async def test_another_hub_process_accepts_the_first_ones_tokens(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "facility")
    token = await token_for(secured, identity, secret)

    async with another_hub(secured_app) as second, hub_client(second) as other:
        response = await other.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    assert response.status_code == 200, response.text


async def test_rotation_keeps_old_tokens_until_their_key_is_removed(
    secured_app: Any, tmp_path: Path
) -> None:
    """`ehrhub admin rotate-key` adds a signer while the hubs run; the tokens of the earlier
    key work until `remove-key`, and then stop at once. Other hub processes follow the file."""
    path = tmp_path / "keys" / "token-keys.json"
    async with (
        another_hub(secured_app, token_key_file=path) as hub,
        another_hub(secured_app, token_key_file=path) as peer,
        hub_client(hub) as client,
        hub_client(peer) as peer_client,
    ):
        identity, secret = await register(hub, "facility")
        before = await token_for(client, identity, secret)
        first = kid_of(before)

        rotated = run_ehrhub("admin", "rotate-key", "--key-file", str(path))
        assert rotated.returncode == 0, rotated.stderr
        after = await token_for(client, identity, secret)
        second = kid_of(after)
        assert second != first and f"added key {second}" in rotated.stdout
        assert first in rotated.stdout  # still verifying, and how to remove it
        for token in (before, after):
            for reader in (client, peer_client):
                ok = await reader.get(
                    "/fhir/Patient", params={"_count": "1"}, headers=bearer(token)
                )
                assert ok.status_code == 200, ok.text

        listed = run_ehrhub("admin", "list-keys", "--json", "--key-file", str(path))
        rows = [(k["kid"], k["signs"]) for k in json.loads(listed.stdout)]
        assert rows == [(first, False), (second, True)] and "secret" not in listed.stdout
        signer = run_ehrhub("admin", "remove-key", second, "--key-file", str(path))
        assert signer.returncode == 1 and "rotate first" in signer.stderr

        removed = run_ehrhub("admin", "remove-key", first, "--key-file", str(path))
        assert removed.returncode == 0, removed.stderr
        for reader in (client, peer_client):
            gone = await reader.get("/fhir/Patient", headers=bearer(before))
            assert gone.status_code == 401 and "names no key" in gone.text, gone.text
            kept = await reader.get("/fhir/Patient?_count=1", headers=bearer(after))
            assert kept.status_code == 200, kept.text
    assert mode_of(path) == 0o600


async def test_a_new_key_file_is_made_for_the_hubs_user_only(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "token-keys.json"

    async with another_hub(app, token_key_file=path):
        pass

    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    document = json.loads(path.read_text())
    assert [k["kid"] for k in document["keys"]] == [document["signer"]]


async def test_a_key_file_others_may_read_stops_the_hub(app: Any, tmp_path: Path) -> None:
    path = tmp_path / "token-keys.json"
    async with another_hub(app, token_key_file=path):
        pass
    path.chmod(0o640)

    with pytest.raises(KeyFileError, match=r"mode 0640.*chmod 600"):
        async with another_hub(app, token_key_file=path):
            pass
