"""A minimal asyncio HTTP/1.1 server for fakes of services we do not own (Discord, Telegram).

It speaks enough HTTP/1.1 for httpx (keep-alive, Content-Length bodies), records every request with
its monotonic arrival time, and lets a fake hold a response (to simulate a hanging server or a
process killed while its request is in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    """One received request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """A response: JSON body (or None for no body) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Reply]]

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class FakeHttpServer:
    """Serves ``handler`` on 127.0.0.1 (a free port)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                parts = urlsplit(target)
                request = Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body)
                self.requests.append(request)
                reply = await self.handler(request)
                request.status = reply.status
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                head_out = [
                    f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}",
                    f"Content-Length: {len(payload)}",
                ]
                if reply.body is not None:
                    head_out.append("Content-Type: application/json")
                head_out += [f"{k}: {v}" for k, v in reply.headers.items()]
                writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()


class Hold:
    """A switch that makes matching requests wait (the server looks hung) until released."""

    def __init__(self) -> None:
        self.active = False
        self.held = 0
        self._released = asyncio.Event()

    def engage(self) -> None:
        self.active = True
        self._released.clear()

    def release(self) -> None:
        self.active = False
        self._released.set()

    async def wait(self) -> None:
        if self.active:
            self.held += 1
            await self._released.wait()
