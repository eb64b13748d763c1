"""A TCP proxy the test controls, to take PostgreSQL away from the persister without touching the server.

``cut()`` closes every proxied connection and stops listening (clients get "connection refused", like a
stopped server); ``restore()`` listens again on the same port. The shared PostgreSQL server is never
restarted: other engineers' tests use it.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port afterwards)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and reset every open connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            transport = writer.transport
            if hasattr(transport, "abort"):
                transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        """Listen again on the same port."""
        await self.start()

    async def close(self) -> None:
        """Cut and wait for the forwarding tasks to end."""
        if self._server is not None:
            await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self.connections += 1
        self._writers.update((client_writer, upstream_writer))
        for reader, writer in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()
