"""Per-service HTTP endpoint: Prometheus ``/metrics`` and a JSON ``/health``.

One tiny asyncio HTTP/1.1 server per process (no framework): ``GET /metrics`` returns the default
Prometheus registry, ``GET /health`` returns ``{"status": "ok"|"degraded", "checks": {...}}`` with
200 when every check passes and 503 otherwise. Services report into a :class:`Health` object.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import msgspec
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = structlog.get_logger(__name__)

_MAX_REQUEST = 8192


@dataclass
class Check:
    """State of one health check."""

    ok: bool
    detail: str = ""
    since: float = field(default_factory=time.time)


class Health:
    """Named health checks of one service; ``/health`` is healthy when all are ok."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        """Record the state of check ``name``; ``since`` changes only when ``ok`` flips."""
        current = self.checks.get(name)
        if current is None or current.ok != ok:
            self.checks[name] = Check(ok=ok, detail=detail)
        else:
            current.detail = detail

    @property
    def ok(self) -> bool:
        """True when every check passes."""
        return all(c.ok for c in self.checks.values())

    def report(self) -> bytes:
        """The JSON body of ``/health``."""
        return msgspec.json.encode(
            {
                "status": "ok" if self.ok else "degraded",
                "checks": {
                    name: {"ok": c.ok, "detail": c.detail, "since": round(c.since, 3)}
                    for name, c in sorted(self.checks.items())
                },
            }
        )


class ObservabilityServer:
    """Serves ``/metrics`` and ``/health`` on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, health: Health, host: str = "127.0.0.1", port: int = 0) -> None:
        self.health = health
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and start serving; afterwards :attr:`port` is the bound port."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("observability_listening", url=f"http://{self.host}:{self.port}/metrics")

    async def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        request_line = head[:_MAX_REQUEST].split(b"\r\n", 1)[0].split()
        method, path = ([*request_line, b"", b""])[:2]
        path = path.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            status, ctype, body = "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        elif path == b"/metrics":
            status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        elif path in (b"/health", b"/healthz", b"/ready"):
            ok = self.health.ok
            status = "200 OK" if ok else "503 Service Unavailable"
            ctype, body = "application/json", self.health.report()
        else:
            status, ctype, body = "404 Not Found", "text/plain", b"try /metrics or /health\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        if method != b"HEAD":
            writer.write(body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
