"""Waiting on conditions in tests, never on fixed sleeps.

Timeouts scale with ``TESTS_TIMEOUT_FACTOR`` (default 1) for slow or busy machines.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

FACTOR = float(os.environ.get("TESTS_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """``seconds`` times the machine's timeout factor."""
    return seconds * FACTOR


async def eventually(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` (sync or async) every 20 ms until it is true.

    Raises:
        AssertionError: Still false after ``timeout`` (scaled) seconds.
    """
    deadline = time.monotonic() + scaled(timeout)
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.1f}s waiting for {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
