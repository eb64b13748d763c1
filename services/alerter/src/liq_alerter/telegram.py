"""Telegram: an HTML message sent with ``sendMessage`` and edited with ``editMessageText``.

``parse_mode=HTML`` needs only ``<``, ``>`` and ``&`` escaped (reliability.md §8); every value is
escaped, including our own numbers, so no input can open a tag. Telegram counts the 4,096-character
limit after entity parsing, in UTF-16 units; the layout below stays far under it whatever the
input because every variable part is bounded (``content.join_limited``, ``content.cut``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import httpx

from liq_alerter.content import facts, join_limited
from liq_alerter.delivery import Result, json_body, quiet_http_logs, retry_after, transport_failure
from liq_common.events import Cascade

MAX_TEXT = 4096


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` (quotes need no escaping outside attributes)."""
    return html.escape(text, quote=False)


def text(state: Cascade) -> str:
    """The HTML message for ``state``."""
    f = facts(state)
    e = escape
    lines = [
        f"<b>{e(f.title)}</b>",
        f"<b>Total:</b> {e(f.total)} ({e(f.count)} liquidations)",
        f"<b>Longs:</b> {e(f.longs)}",
        f"<b>Shorts:</b> {e(f.shorts)}",
        f"<b>Price:</b> {e(f.price)}, move {e(f.move)}",
        f"<b>Duration:</b> {e(f.duration)}",
        f"<b>Risk:</b> {e(f.risk)}",
        f"<b>Exchanges:</b> {join_limited(f.exchanges, 300, e)}",
        f"<b>Symbols:</b> {join_limited(f.symbols, 1500, e)}",
        "",
        f"<i>{e(f.summary)}</i>",
        f"<code>{e(f.footer)}</code>",
    ]
    return "\n".join(lines)


class TelegramSink:
    """Sends and edits alert messages in one chat through one bot.

    Args:
        token: The bot token (``<id>:<secret>``); it is part of every request path.
        chat_id: Target chat.
        api_base: Bot API base URL, e.g. ``https://api.telegram.org``.
        timeout: Response timeout, seconds.
        redact: Masks secrets in texts that reach logs.
    """

    def __init__(self, token: str, chat_id: str, api_base: str, timeout: float, redact: Callable[[str], str]) -> None:
        quiet_http_logs()
        self._url = f"{api_base.rstrip('/')}/bot{token}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": "liq-alerter/0.1"},
        )
        self._chat_id = chat_id
        self._redact = redact

    async def post(self, state: Cascade) -> Result:
        """``sendMessage``; on success ``message_id`` is the new message's id."""
        body = {"chat_id": self._chat_id, "text": text(state), "parse_mode": "HTML", **_NO_PREVIEW}
        return await self._call("/sendMessage", body, idempotent=False)

    async def edit(self, message_id: str, state: Cascade) -> Result:
        """``editMessageText`` of message ``message_id``."""
        body = {
            "chat_id": self._chat_id,
            "message_id": int(message_id),
            "text": text(state),
            "parse_mode": "HTML",
            **_NO_PREVIEW,
        }
        return await self._call("/editMessageText", body, idempotent=True)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _call(self, method: str, body: dict[str, Any], *, idempotent: bool) -> Result:
        try:
            response = await self._client.post(self._url + method, json=body)
        except httpx.TransportError as exc:
            return transport_failure(exc, idempotent=idempotent)
        return self._classify(response)

    def _classify(self, response: httpx.Response) -> Result:
        status = response.status_code
        body = json_body(response)
        description = str(body.get("description", ""))
        if status == 200 and body.get("ok") is True:
            result = body.get("result")
            message_id = str(result.get("message_id", "")) if isinstance(result, dict) else ""
            return Result("ok", message_id=message_id, status=status)
        detail = self._redact(f"{status} {description[:200]}")
        lowered = description.lower()
        if status == 429:
            parameters = body.get("parameters")
            value = parameters.get("retry_after") if isinstance(parameters, dict) else None
            return Result("rate_limited", wait=retry_after(response, value), status=status, detail=detail)
        if status == 400 and "message is not modified" in lowered:
            return Result("ok", status=status, detail=detail)  # the message already shows this text
        if status == 400 and "message to edit not found" in lowered:
            return Result("message_gone", status=status, detail=detail)
        if status in (401, 403, 404) or (status == 400 and "chat not found" in lowered):
            return Result("gone", status=status, detail=detail)
        if status >= 500:
            return Result("retry", status=status, detail=detail)
        return Result("rejected", status=status, detail=detail)


_NO_PREVIEW = {"link_preview_options": {"is_disabled": True}}
