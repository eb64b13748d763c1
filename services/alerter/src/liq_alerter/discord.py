"""Discord: an embed coloured by tier, posted with Execute Webhook and edited in place.

Execute Webhook is called with ``?wait=true`` so Discord answers with the created message (its id)
and a failure is an error instead of silence; the message is then edited with
``PATCH /webhooks/{id}/{token}/messages/{message_id}``. Embed limits (reliability.md §8): title 256,
description 4096, 25 fields, field name 256, value 1024, footer 2048, 6000 characters in total.
Values taken from the input (asset, symbols, exchanges, cascade id) have Markdown escaped;
``allowed_mentions`` is empty so nothing can ping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from liq_alerter.content import Facts, cut, facts, join_limited, utf16_len
from liq_alerter.delivery import Result, bucket_wait, json_body, quiet_http_logs, retry_after, transport_failure
from liq_common.events import Cascade, Tier

COLOURS: dict[Tier, int] = {"low": 0x9E9E9E, "medium": 0xFDD835, "high": 0xFB8C00, "critical": 0xE53935}
LIMITS = {"title": 256, "description": 4096, "name": 256, "value": 1024, "footer": 2048, "fields": 25, "total": 6000}
UNKNOWN_MESSAGE = 10008
_MARKDOWN = set("\\*_~|`>#-[]()<@:")


def escape(text: str) -> str:
    """Backslash-escape Discord Markdown (and mention/emoji openers) in an input-derived value."""
    return "".join(f"\\{ch}" if ch in _MARKDOWN else ch for ch in text)


def _fit(text: str, limit: int) -> str:
    text = cut(text, limit)
    # Never end on a lone escaping backslash left by the cut.
    return text[:-2] + "…" if text.endswith("\\…") else text


def embed(shown: Facts) -> dict[str, Any]:
    """The embed for ``shown`` (built with ``render=escape``), within Discord's limits."""
    title = _fit(shown.title, LIMITS["title"])
    fields = [
        ("Total", shown.total, True),
        ("Liquidations", shown.count, True),
        ("Risk", shown.risk, True),
        ("Longs", shown.longs, True),
        ("Shorts", shown.shorts, True),
        ("Move", shown.move, True),
        ("Price", shown.price, False),
        ("Duration", shown.duration, True),
        ("Exchanges", join_limited(shown.exchanges, 300, escape), True),
        ("Symbols", join_limited(shown.symbols, 1000, escape), False),
    ]
    body: dict[str, Any] = {
        "title": title,
        "description": _fit(shown.summary, 1000),
        "color": COLOURS[shown.tier],
        "fields": [
            {"name": name, "value": _fit(value or "-", LIMITS["value"]), "inline": inline}
            for name, value, inline in fields[: LIMITS["fields"]]
        ],
        "footer": {"text": _fit(shown.footer, LIMITS["footer"])},
    }
    assert embed_chars(body) <= LIMITS["total"], "embed over Discord's 6000-character total"
    return body


def embed_chars(body: dict[str, Any]) -> int:
    """Characters Discord counts towards the 6000 total of one embed."""
    total = utf16_len(body.get("title", "")) + utf16_len(body.get("description", ""))
    total += sum(utf16_len(f["name"]) + utf16_len(f["value"]) for f in body.get("fields", []))
    return total + utf16_len(body.get("footer", {}).get("text", ""))


def payload(state: Cascade) -> dict[str, Any]:
    """Body of an execute or edit request for ``state``."""
    return {"embeds": [embed(facts(state, escape))], "allowed_mentions": {"parse": []}}


class DiscordSink:
    """Posts and edits alert messages through one webhook.

    Args:
        secret: ``<webhook id>/<webhook token>``.
        api_base: Discord API base URL, e.g. ``https://discord.com/api/v10``.
        timeout: Response timeout, seconds.
        redact: Masks secrets in texts that reach logs.
    """

    def __init__(self, secret: str, api_base: str, timeout: float, redact: Callable[[str], str]) -> None:
        quiet_http_logs()
        # Full URLs, not httpx's base_url: that appends a "/" Discord would answer with 404.
        self._url = f"{api_base.rstrip('/')}/webhooks/{secret}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": "liq-alerter/0.1"},
        )
        self._redact = redact

    async def post(self, state: Cascade) -> Result:
        """Execute the webhook; on success ``message_id`` is the new message's id."""
        return await self._call("POST", "", payload(state), idempotent=False, params={"wait": "true"})

    async def edit(self, message_id: str, state: Cascade) -> Result:
        """Replace the embed of message ``message_id``."""
        return await self._call("PATCH", f"/messages/{message_id}", payload(state), idempotent=True)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _call(
        self, method: str, path: str, body: dict[str, Any], *, idempotent: bool, params: dict[str, str] | None = None
    ) -> Result:
        try:
            response = await self._client.request(method, self._url + path, json=body, params=params)
        except httpx.TransportError as exc:
            return transport_failure(exc, idempotent=idempotent)
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> Result:
        status = response.status_code
        if status in (200, 204):
            message_id = str(json_body(response).get("id", "")) if status == 200 else ""
            return Result("ok", message_id=message_id, wait=bucket_wait(response), status=status)
        body = json_body(response)
        detail = self._redact(f"{status} code={body.get('code')} {str(body.get('message', ''))[:200]}")
        if status == 429:
            shared = bool(body.get("global")) or response.headers.get("X-RateLimit-Global") == "true"
            wait = retry_after(response, body.get("retry_after"))
            return Result("rate_limited", wait=wait, shared=shared, status=status, detail=detail)
        if status == 404 and body.get("code") == UNKNOWN_MESSAGE:
            return Result("message_gone", status=status, detail=detail)
        if status in (401, 403, 404):
            # 10015 Unknown Webhook (deleted) or a bad token: "you should not attempt to use it again".
            return Result("gone", status=status, detail=detail)
        if status >= 500:
            return Result("retry", wait=bucket_wait(response), status=status, detail=detail)
        return Result("rejected", status=status, detail=detail)
