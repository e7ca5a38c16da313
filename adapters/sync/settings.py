"""Settings of `ehrhub sync`, read from EHRHUB_SYNC_* environment variables and matching flags."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class SyncSettings(BaseSettings):
    """Every tunable of the sync client in one place."""

    model_config = SettingsConfigDict(env_prefix="EHRHUB_SYNC_")

    outbox: Path = Path(".ehrhub/outbox.sqlite")
    # Outbox rows read (and parsed records enqueued) per round; each Bundle is its own request.
    batch: int = 50
    timeout_seconds: float = 120.0
    # Retry delays grow as base * 2**attempt, capped, with jitter.
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    # A record still failing after this many attempts stops holding the others back.
    hold_attempts: int = 5
    # How often the progress line is redrawn.
    progress_seconds: float = 0.25
    # `ehrhub mllp`: the largest message taken (a bigger one is answered AR), how often the
    # sender looks for new messages when not woken, and how long a stop waits for a
    # connection or a request to the hub to finish.
    mllp_max_message_bytes: int = 16 * 1024 * 1024
    mllp_idle_seconds: float = 1.0
    mllp_stop_seconds: float = 5.0
    # OAuth client credentials (a facility client of `ehrhub admin create-client`): with
    # both set, every request carries a bearer token from the hub's token endpoint.
    client_id: str | None = None
    client_secret: str | None = None
