"""Where alerts go: the ``DESTINATIONS`` setting, parsed into typed, validated destinations.

``DESTINATIONS`` (or ``DESTINATIONS_FILE``) is a JSON list; each item has a ``kind``::

    [{"kind": "discord", "name": "ops", "webhook_url_file": "/run/secrets/ops_webhook",
      "min_tier": "high", "assets": ["BTC", "ETH"]},
     {"kind": "telegram", "name": "desk", "bot_token": "123:abc", "chat_id": "-1001234",
      "min_tier": "critical"},
     {"kind": "console", "name": "console", "min_tier": "low"}]

Secrets (``webhook_url``, ``bot_token``) may be given inline or as ``*_file`` paths (Docker secrets).
Only the webhook id and token are taken from a webhook URL; requests go to ``DISCORD_API_BASE``.
``name`` labels metrics, logs and Redis keys, so it is short and never secret. ``assets`` empty means
every asset; ``min_interval`` is the least spacing of two requests to the destination, seconds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from liq_common.events import TIERS, Tier
from liq_common.settings import Secret

Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,32}$")]
Interval = Annotated[float, msgspec.Meta(ge=0)]

_WEBHOOK_PATH = re.compile(r"/webhooks/(\d+)/([A-Za-z0-9_.-]+)/?$")


class DestinationError(ValueError):
    """``DESTINATIONS`` is malformed; the message names the item and field, never a secret value."""


class _Base(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", forbid_unknown_fields=True):
    name: Name
    min_tier: Tier = "high"
    assets: list[str] = msgspec.field(default_factory=list)


class DiscordConfig(_Base, frozen=True, kw_only=True, tag="discord"):
    """A Discord channel webhook."""

    webhook_url: str = ""
    webhook_url_file: str = ""
    min_interval: Interval = 0.5


class TelegramConfig(_Base, frozen=True, kw_only=True, tag="telegram"):
    """A Telegram chat reached through a bot."""

    chat_id: str
    bot_token: str = ""
    bot_token_file: str = ""
    min_interval: Interval = 1.0


class ConsoleConfig(_Base, frozen=True, kw_only=True, tag="console"):
    """Alerts written to standard output as plain lines (``make demo``)."""

    min_interval: Interval = 0.0


_Config = DiscordConfig | TelegramConfig | ConsoleConfig
_decoder = msgspec.json.Decoder(list[_Config])


class Destination(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved destination.

    Attributes:
        name: Label in metrics, logs and Redis keys.
        kind: ``discord``, ``telegram`` or ``console``.
        min_tier: Lowest tier that is posted.
        assets: Upper-case base assets to alert on; empty = all.
        min_interval: Least seconds between two requests to it.
        secret: Discord ``<webhook id>/<token>`` or the Telegram bot token; empty for the console.
        chat_id: Telegram chat id.
    """

    name: str
    kind: Literal["discord", "telegram", "console"]
    min_tier: Tier
    assets: frozenset[str]
    min_interval: float
    secret: Secret = Secret("")
    chat_id: str = ""

    def wants(self, base: str) -> bool:
        """True when cascades on asset ``base`` go to this destination."""
        return not self.assets or base.upper() in self.assets

    def reaches(self, tier: Tier) -> bool:
        """True when ``tier`` is at or above this destination's minimum tier."""
        return TIERS.index(tier) >= TIERS.index(self.min_tier)


def _secret(inline: str, path: str, what: str, where: str) -> str:
    if bool(inline) == bool(path):
        raise DestinationError(f"{where}: give exactly one of {what} and {what}_file")
    if inline:
        return inline.strip()
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise DestinationError(f"{where}: cannot read {what}_file: {exc.strerror}") from exc


def _resolve(item: _Config, where: str) -> Destination:
    common = {
        "name": item.name,
        "min_tier": item.min_tier,
        "assets": frozenset(a.upper() for a in item.assets),
        "min_interval": item.min_interval,
    }
    if isinstance(item, DiscordConfig):
        url = _secret(item.webhook_url, item.webhook_url_file, "webhook_url", where)
        match = _WEBHOOK_PATH.search(url.split("?", 1)[0])
        if match is None:
            raise DestinationError(f"{where}: webhook_url is not a .../webhooks/<id>/<token> URL")
        return Destination(kind="discord", secret=Secret(f"{match[1]}/{match[2]}"), **common)  # type: ignore[arg-type]
    if isinstance(item, TelegramConfig):
        token = _secret(item.bot_token, item.bot_token_file, "bot_token", where)
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
            raise DestinationError(f"{where}: bot_token is not <bot id>:<secret>")
        return Destination(kind="telegram", secret=Secret(token), chat_id=item.chat_id, **common)  # type: ignore[arg-type]
    return Destination(kind="console", **common)  # type: ignore[arg-type]


def parse_destinations(raw: Secret) -> list[Destination]:
    """Parse the ``DESTINATIONS`` JSON; empty gives one console sink at tier ``high``.

    Raises:
        DestinationError: Bad JSON, an unknown field or kind, a bad value, a duplicate name, an
            unreadable ``*_file`` or a malformed secret. Messages never include secret values.
    """
    text = raw.get().strip()
    if not text:
        return [Destination(name="console", kind="console", min_tier="high", assets=frozenset(), min_interval=0.0)]
    try:
        items = _decoder.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        # msgspec names the path ($[0].min_tier) and the expected type, not the offending value.
        raise DestinationError(f"DESTINATIONS: {exc}") from None
    resolved = [_resolve(item, f"DESTINATIONS[{i}] ({item.name})") for i, item in enumerate(items)]
    names = [d.name for d in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DestinationError(f"DESTINATIONS: duplicate names {duplicates}")
    return resolved


class Redactor:
    """Replaces every configured secret (and its parts) in a text with ``***``."""

    def __init__(self, destinations: list[Destination]) -> None:
        parts: set[str] = set()
        for dest in destinations:
            value = dest.secret.get()
            if value:
                parts.add(value)
                # A webhook token or a bot token's secret half may show up alone (paths, error texts).
                parts.update(p for p in re.split(r"[/:]", value) if len(p) >= 16)
        self._parts = sorted(parts, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with the secrets masked."""
        for part in self._parts:
            text = text.replace(part, "***")
        return text
