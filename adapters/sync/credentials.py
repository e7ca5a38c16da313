"""The hub's access token for `ehrhub sync` and `ehrhub mllp`: OAuth2 client credentials.

The token endpoint is found as SMART clients find it, in `{FHIR base}/.well-known/
smart-configuration`; a token is asked for when first needed, kept until shortly before it
expires, and asked for again when the hub answers 401 (it was revoked, or the hub restarted
with a new key). https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

import time
from collections.abc import Generator
from typing import Any

import httpx

# A token is renewed this long before the hub says it expires.
MARGIN_SECONDS = 30.0
DISCOVERY = "/.well-known/smart-configuration"


class CredentialsRefused(Exception):
    """The hub's token endpoint refused the client id and secret, or cannot be found."""


class Credentials:
    """A client id and secret, and the bearer token they currently give."""

    def __init__(self, client: httpx.Client, fhir_base: str, client_id: str, secret: str) -> None:
        self.client = client
        self.fhir_base = fhir_base.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self._token = ""
        self._until = 0.0

    def header(self) -> dict[str, str]:
        """Return the Authorization header, asking for a token when there is none left;
        httpx.TransportError when the hub cannot be reached (the caller retries)."""
        if not self._token or time.time() >= self._until:
            self._token, lifetime = self._ask()
            self._until = time.time() + max(lifetime - MARGIN_SECONDS, lifetime / 2)
        return {"authorization": f"Bearer {self._token}"}

    def forget(self) -> None:
        """Drop the token: the hub refused it, the next request asks for a new one."""
        self._token = ""

    def _ask(self) -> tuple[str, float]:
        endpoint = self._token_endpoint()
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.secret,
        }
        response = self.client.post(endpoint, data=form)
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or response.text[:200]
            raise CredentialsRefused(
                f"the hub's token endpoint {endpoint} refused client {self.client_id}: "
                f"{response.status_code} {reason}"
            )
        return str(body["access_token"]), float(body.get("expires_in", 300))

    def _token_endpoint(self) -> str:
        response = self.client.get(self.fhir_base + DISCOVERY)
        endpoint = _json(response).get("token_endpoint") if response.status_code == 200 else None
        if not endpoint:
            raise CredentialsRefused(
                f"{self.fhir_base}{DISCOVERY} names no token endpoint "
                f"({response.status_code}): is this the hub's FHIR base?"
            )
        return str(endpoint)


class TokenAuth(httpx.Auth):
    """Authentication for any httpx client of the hub, synchronous or not: a client id and
    secret whose bearer token is asked for at the hub's `/auth/token` (at the request's
    origin) when missing or half its life gone. A request carrying its own Authorization
    header keeps it."""

    requires_response_body = True

    def __init__(self, client_id: str, secret: str, token_path: str = "/auth/token") -> None:
        self.form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        }
        self.token_path = token_path
        self.token = ""
        self.renew_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the token to the request, first asking for one when it is missing or old."""
        if "authorization" not in request.headers:
            if time.monotonic() >= self.renew_at:
                answer = yield httpx.Request(
                    "POST", request.url.join(self.token_path), data=self.form
                )
                body = _json(answer)
                if answer.status_code != 200 or "access_token" not in body:
                    raise CredentialsRefused(
                        f"the hub refused client {self.form['client_id']}: "
                        f"{answer.status_code} {answer.text[:200]}"
                    )
                self.token = str(body["access_token"])
                self.renew_at = time.monotonic() + float(body.get("expires_in", 300)) / 2
            request.headers["authorization"] = f"Bearer {self.token}"
        yield request


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
