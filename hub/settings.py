"""Settings of the hub, read from EHRHUB_* environment variables and matching flags."""

import ipaddress
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import PositiveInt, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fhir_profiles.pack import pack_of

# The token keys' file in the data folder, unless EHRHUB_TOKEN_KEY_FILE names another.
TOKEN_KEY_FILE = "token-keys.json"


class Settings(BaseSettings):
    """Every tunable of the hub in one place."""

    model_config = SettingsConfigDict(env_prefix="EHRHUB_")

    host: str = "127.0.0.1"
    port: int = 8080
    # Without a URI the hub starts its embedded MongoDB-wire server under data_dir.
    mongodb_uri: str | None = None
    database: str = "ehrhub"
    # How long a request waits for an unreachable database before answering 503.
    database_timeout_seconds: float = 10.0
    data_dir: Path = Path(".ehrhub")
    # Seconds to wait for the embedded database to answer before giving up.
    embedded_start_timeout: float = 30.0
    max_body_bytes: int = 50 * 1024 * 1024
    # Bundles with more entries than this are refused whole (413).
    max_bundle_entries: int = 10_000
    # A search whose index lookup finds more resources than this is refused (400, too-costly)
    # rather than read whole: a national database holds millions of each type.
    max_search_candidates: int = 20_000
    default_page_size: int = 50
    max_page_size: int = 1000
    # Attempts at a write that lost a race with another writer of the same resource.
    write_retries: int = 20
    # Deeper JSON is refused: resources nest far less, and MongoDB refuses more than 100 levels.
    max_json_depth: int = 64
    # The FHIR base as clients see it. Without it, links and the private_key_jwt audience name
    # the address the hub listens on (host and port), never the request's Host header.
    public_base_url: str | None = None
    # Addresses (or networks) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed, comma-separated. None by default: a caller cannot write
    # another address into the audit trail.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Patient records carrying the same identifier of this system are one person. By default
    # the country pack's national ID (its NamingSystem typed NI): Vietnam's 12-digit citizen
    # ID as the community VN Core guide names it, Indonesia's NIK.
    national_id_system: str = ""
    # Facilities are identified nationally under this system (Organization.identifier, and
    # meta.tag / meta.source of what a facility sends): a facility client writes only its own.
    facility_system: str = "https://moh.gov.vn/fhir/sid/facility"
    # What a clinician may see of another facility's records when no patient-privacy Consent
    # of the patient speaks to the access: deny (patients opt in) or permit (they opt out).
    consent_default: Literal["deny", "permit"] = "deny"
    # How long the persons and consents a clinician's request names are remembered (seconds;
    # 0: never). A change written through this hub process applies at once; one written
    # through another hub process on the same database, within this time.
    consent_cache_seconds: float = 30.0
    # An AuditEvent lists at most this many resources and patients (and indexes at most this
    # many patients for search); the rest are counted.
    audit_max_listed: int = 50
    audit_max_indexed_patients: int = 1000
    # Whether the FHIR routes demand a bearer token: on, always, in any deployment. Off is for
    # local development only (`ehrhub serve` warns loudly): a call without a token then sees
    # and writes everything, and a call with one is still checked.
    auth_required: bool = True
    # Lifetime of an access token: short, since a stolen one works until it expires (a revoked
    # client's tokens stop at once, as every request checks the client).
    token_lifetime_seconds: PositiveInt = 300
    # Lifetime of a break-the-glass token (/auth/break-glass): the emergency access ends then,
    # and a new declaration is needed to go on.
    break_glass_seconds: PositiveInt = 900
    # `iss` and `aud` of the hub's tokens: every hub process on one database must agree.
    token_issuer: str = "ehrhub"
    token_audience: str = "ehrhub"
    # The keys that sign and verify the hub's tokens: a file only the hub's user may read
    # (mode 0600), created on first start, shared by every hub process of a deployment. None:
    # token-keys.json in data_dir.
    token_key_file: Path | None = None
    # The longest a SMART client assertion (private_key_jwt) may live, from now to its `exp`.
    max_assertion_lifetime_seconds: PositiveInt = 300
    # The country's offset from UTC: dates without a time in a Consent (a period ending
    # "2026-12-31") are days there. Vietnam and western Indonesia: UTC+7.
    utc_offset_minutes: int = 7 * 60
    # The country pack (a folder of fhir_profiles/): its national profiles, code systems and
    # identifier checks. Vietnam by default; "id" for Indonesia.
    country: str = "vn"
    # What a write breaking a national profile gets. Base-model errors are always refused.
    # lenient: stored, its findings kept against the facility (the rollout is not blocked
    # while quality is measured); strict: an error-level finding refuses it (422) with its
    # OperationOutcome; off: profiles are not checked on write (`$validate` still works).
    profile_mode: Literal["lenient", "strict", "off"] = "lenient"
    # A facility is "live" while its last accepted submission is at most this many days old.
    live_days: PositiveInt = 7
    # The reports remember the counters' running totals, kept up to date with what this
    # process counts, and read them again after this many seconds (what other hub processes
    # counted meanwhile).
    reports_cache_seconds: float = 10.0
    # The ministry's own roadmap milestones (JSON, as the country pack's roadmap.json), added
    # to the pack's published deadlines.
    roadmap_file: Path | None = None

    @model_validator(mode="after")
    def _national_id_of_the_pack(self) -> "Settings":
        """Take the national ID system from the country pack unless one is set."""
        if not self.national_id_system:
            self.national_id_system = pack_of(self.country).national_id_system or ""
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Read a comma-separated list of addresses from the environment."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        """Refuse an entry that is not an IP address or network."""
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return value

    @model_validator(mode="after")
    def _token_keys_in_the_data_dir(self) -> "Settings":
        """Keep the token keys in the data folder unless a file is named."""
        if self.token_key_file is None:
            self.token_key_file = self.data_dir / TOKEN_KEY_FILE
        return self

    @property
    def zone(self) -> tzinfo:
        """Return the country's time zone."""
        return timezone(timedelta(minutes=self.utc_offset_minutes))
