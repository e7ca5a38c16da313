"""Errors as data, and the one place where they become an OperationOutcome."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Issue:
    """One OperationOutcome.issue: what went wrong and where."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: list[str] = field(default_factory=list)
    # The rule broken, as a coding (a national profile's rule: `details`).
    details: dict[str, str] | None = None

    def to_fhir(self) -> dict[str, Any]:
        """Return the issue as FHIR JSON."""
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.details:
            issue["details"] = {"coding": [self.details]}
        if self.expression:
            issue["expression"] = self.expression
        return issue


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    """Build an OperationOutcome resource from issues."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def information(message: str) -> dict[str, Any]:
    """Build an OperationOutcome carrying one informational message."""
    return operation_outcome([Issue("informational", message, severity="information")])


class HubError(Exception):
    """An error a client caused or can act on; carries its HTTP status and FHIR issue code."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        expression: str | None = None,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.issues = issues or [
            Issue(self.code, message, expression=[expression] if expression else [])
        ]

    def outcome(self) -> dict[str, Any]:
        """Return this error as an OperationOutcome."""
        return operation_outcome(self.issues)

    def locate(self, path: str) -> "HubError":
        """Point issues that say nowhere at `path`, e.g. `Bundle.entry[3]`, and return self."""
        if path:
            for issue in self.issues:
                issue.expression = issue.expression or [path]
        return self


class BadRequest(HubError):
    """400: the request is malformed."""


class TooCostly(HubError):
    """A request the hub refuses because answering it would read too much."""

    code = "too-costly"


class InvalidResource(HubError):
    """400: a resource breaks the FHIR base model."""

    code = "structure"


class BusinessRule(HubError):
    """422: the request is well formed but breaks a rule of the server."""

    status = 422
    code = "business-rule"


class NotFound(HubError):
    """404: no such resource or resource type."""

    status = 404
    code = "not-found"


class Gone(HubError):
    """410: the resource was deleted."""

    status = 410
    code = "deleted"


class MethodNotAllowed(HubError):
    """405: the interaction is not supported on this path."""

    status = 405
    code = "not-supported"


class Conflict(HubError):
    """409: the write collides with another one."""

    status = 409
    code = "conflict"


class PreconditionFailed(HubError):
    """412: a version or condition given by the client does not hold."""

    status = 412
    code = "conflict"


class PayloadTooLarge(HubError):
    """413: the body is larger than the configured limit."""

    status = 413
    code = "too-costly"


class UnsupportedMediaType(HubError):
    """415: the body is not FHIR JSON."""

    status = 415
    code = "not-supported"


class Unavailable(HubError):
    """503: the hub cannot serve right now (its database is unreachable); retry later."""

    status = 503
    code = "transient"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class NotAcceptable(HubError):
    """406: the client asks for a format the hub does not produce."""

    status = 406
    code = "not-supported"


class Unauthorized(HubError):
    """401: no bearer token, or one the hub does not accept (RFC 6750's invalid_token)."""

    status = 401
    code = "login"

    def __init__(self, message: str, *, error: str | None = "invalid_token") -> None:
        # RFC 6750 section 3: a request without credentials gets the challenge without an error.
        challenge = 'Bearer realm="ehrhub"'
        if error is not None:
            challenge += f', error="{error}", error_description="{_quotable(message)}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(HubError):
    """403: the caller is known but may not do this (RFC 6750's insufficient_scope)."""

    status = 403
    code = "forbidden"

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        headers = {}
        if scope is not None:
            headers["WWW-Authenticate"] = (
                f'Bearer realm="ehrhub", error="insufficient_scope", '
                f'error_description="{_quotable(message)}", scope="{scope}"'
            )
        super().__init__(message, headers=headers)


def _quotable(text: str) -> str:
    """Return text fit for a quoted-string of an HTTP header: no quotes, backslashes, controls."""
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "'" for c in text)
