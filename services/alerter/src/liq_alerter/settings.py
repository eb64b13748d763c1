"""Settings of liq-alerter, read from the environment once in ``main``."""

from __future__ import annotations

from typing import Annotated

import msgspec

from liq_common.settings import CommonSettings, Port, PositiveFloat, PositiveInt, Secret

NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class Settings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    """liq-alerter settings (env var = upper-case name; every one also accepts ``NAME_FILE``).

    Attributes:
        destinations: JSON list of destinations (``DESTINATIONS`` or ``DESTINATIONS_FILE``); it holds
            webhook URLs and bot tokens, so it is a :class:`Secret`. See ``destinations.py`` for the shape.
            Empty means one console sink at tier ``high``.
        discord_api_base: Base URL of the Discord HTTP API; only the webhook id and token are taken
            from each configured webhook URL.
        telegram_api_base: Base URL of the Telegram Bot API.
        edit_interval: Least seconds between two edits of one posted message.
        max_attempts: Attempts of one request (5xx, timeouts, connection errors) before it is given up
            and the cascade state goes to the dead-letter stream. 429 answers are not counted: they
            are waited out for as long as the platform asks.
        retry_base: First backoff ceiling between attempts, seconds (full jitter, doubling).
        retry_cap: Largest backoff ceiling, seconds.
        http_timeout: Seconds to wait for an HTTP response (connect timeout is at most 5 s).
        state_prefix: Redis key prefix of the idempotency records; empty = ``<cascades_stream>:alert:``.
        state_ttl: Seconds a per-cascade record is kept after its last change (default 7 days).
        max_state_age: Cascade states older than this (seconds, by ``emitted_ts``/``window_end``) are
            skipped: a replay of an old stream after the records expired must not re-post old alerts.
            Keep it well below ``state_ttl``.
        consumer_name: Consumer name in the ``alerter`` group; empty = the host name. Keep it stable
            across restarts so un-acknowledged entries come back to the same process.
        batch_size: Stream entries per read.
        block_ms: Stream read block time, ms (also the longest wait before SIGTERM is noticed).
    """

    metrics_port: Port = 9105
    destinations: Secret = Secret("")
    discord_api_base: str = "https://discord.com/api/v10"
    telegram_api_base: str = "https://api.telegram.org"
    edit_interval: NonNegativeFloat = 10.0
    max_attempts: PositiveInt = 6
    retry_base: PositiveFloat = 0.5
    retry_cap: PositiveFloat = 30.0
    http_timeout: PositiveFloat = 10.0
    state_prefix: str = ""
    state_ttl: PositiveInt = 7 * 24 * 3600
    max_state_age: PositiveInt = 6 * 3600
    consumer_name: str = ""
    batch_size: PositiveInt = 100
    block_ms: PositiveInt = 1000

    @property
    def key_prefix(self) -> str:
        """Prefix of every Redis key the alerter owns."""
        return self.state_prefix or f"{self.cascades_stream}:alert:"
