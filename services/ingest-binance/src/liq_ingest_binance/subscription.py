"""Making sure a Binance connection really carries the liquidation stream (exchange-feeds.md §1.3).

A stream named in the URL (``/stream?streams=!forceOrder@arr`` or ``/ws/!forceOrder@arr``) is
subscribed without any reply, and a connection that silently did not subscribe it looks exactly like
a quiet market. So each new connection asks ``LIST_SUBSCRIPTIONS``; when the stream is missing it
sends a live ``SUBSCRIBE`` and checks the reply (``{"result": null, "id": N}`` or an error
``{"code": ..., "msg": ..., "id": N}``), retrying a failure every ``retry`` seconds and counting it.
Each connection sends at most a few requests, far below Binance's 10 incoming messages per second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger(__name__)

LIST_ID = 1
"""``id`` of the LIST_SUBSCRIPTIONS request; SUBSCRIBE requests count up from 2."""
CONTROL_ID = 1_000_000
"""``id`` of the SUBSCRIBE of the control stream (``!markPrice@arr@1s``), out of the range above."""


def streams_of(url: str) -> list[str]:
    """The stream names a URL subscribes: ``?streams=a/b`` (combined) or ``/ws/<name>`` (raw)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query).get("streams")
    if query:
        return [name for name in query[0].split("/") if name]
    if "/ws/" in parts.path:
        return [parts.path.rsplit("/ws/", 1)[1]]
    return []


class StreamCheck:
    """The subscription check of one connection.

    Args:
        ws: The open connection.
        streams: The streams the URL subscribes.
        retry: Seconds between SUBSCRIBE attempts after a failure.
        on_failure: Called with the error message of each failed SUBSCRIBE (counts it).
        control: Control stream to subscribe too (proves the link carries data), or "" for none.
    """

    def __init__(
        self,
        ws: ClientConnection,
        streams: list[str],
        retry: float,
        on_failure: Callable[[str], None],
        control: str = "",
    ) -> None:
        self.ws = ws
        self.streams = streams
        self.control = control
        self.retry = retry
        self.on_failure = on_failure
        self.confirmed = False
        self._next_id = LIST_ID
        self._pending: set[int] = set()
        self._retrying: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Ask which streams the connection carries."""
        if self.streams:
            self._pending.add(LIST_ID)
            await self.ws.send(msgspec.json.encode({"method": "LIST_SUBSCRIPTIONS", "id": LIST_ID}))
        if self.control:
            self._pending.add(CONTROL_ID)
            await self.ws.send(msgspec.json.encode({"method": "SUBSCRIBE", "params": [self.control], "id": CONTROL_ID}))

    def close(self) -> None:
        """Stop a pending retry (the connection ended)."""
        if self._retrying is not None:
            self._retrying.cancel()

    def owns(self, request_id: int | str | None) -> bool:
        """True if ``request_id`` answers one of our requests."""
        return isinstance(request_id, int) and request_id in self._pending

    async def on_reply(self, request_id: int, result: list[str] | None, error: str | None) -> None:
        """Handle the reply to one of our requests."""
        self._pending.discard(request_id)
        if request_id == CONTROL_ID:
            if error is not None:
                log.warning("binance_control_stream_refused", stream=self.control, error=error)
            return
        if error is not None:
            self.on_failure(error)
            self._retrying = asyncio.create_task(self._subscribe_later())
        elif request_id == LIST_ID:
            missing = [s for s in self.streams if s not in (result or [])]
            if missing:
                log.warning("binance_stream_not_subscribed", missing=missing)
                await self._subscribe(missing)
            else:
                self.confirmed = True
        else:
            self.confirmed = True
            log.info("binance_stream_subscribed", streams=self.streams)

    async def _subscribe(self, streams: list[str]) -> None:
        self._next_id += 1
        self._pending.add(self._next_id)
        await self.ws.send(msgspec.json.encode({"method": "SUBSCRIBE", "params": streams, "id": self._next_id}))

    async def _subscribe_later(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await asyncio.sleep(self.retry)
            await self._subscribe(self.streams)
