"""``liq top`` as a user runs it: a real pseudo-terminal, real Redis state, q and Ctrl-C to leave."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

import pytest
import redis.asyncio as aioredis

from tests.cli.factories import MINUTE, cascade, dash_prefix, env_for, liq, seed_dashboard
from tests.conftest import Streams
from tests.waiting import scaled

ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>78]")


class Terminal:
    """``liq top`` in a child process whose controlling terminal is a 200x50 pty."""

    def __init__(self, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # child: exec at once
            os.execve(sys.executable, [sys.executable, "-m", "liq_cli", "top"], env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.screen = b""
        self.status: int | None = None

    def text(self) -> str:
        """Everything written so far, without escape sequences."""
        return ANSI.sub(b"", self.screen).decode(errors="replace")

    def wait_for(self, *needles: str, timeout: float = 20.0) -> None:
        """Read output until every needle has appeared (AssertionError after ``timeout`` scaled seconds)."""
        deadline = time.monotonic() + scaled(timeout)
        while not all(n in self.text() for n in needles):
            left = deadline - time.monotonic()
            assert left > 0, f"screen never showed {needles!r}; last output:\n{self.text()[-3000:]}"
            if not self._read(left):
                raise AssertionError(f"liq top ended before showing {needles!r}:\n{self.text()[-3000:]}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], min(timeout, 0.5))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.screen += chunk
        return bool(chunk)

    def press(self, data: bytes) -> None:
        """Type ``data`` on the keyboard."""
        os.write(self.fd, data)

    def exit_status(self, timeout: float = 15.0) -> int:
        """Drain output until the child exits; its exit status."""
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self._read(deadline - time.monotonic())
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"liq top did not exit within {timeout}s:\n{self.text()[-2000:]}")


def _session(env: dict[str, str], key: bytes, needles: tuple[str, ...]) -> tuple[int, str]:
    term = Terminal(env)
    try:
        term.wait_for(*needles)
    except AssertionError:
        os.kill(term.pid, signal.SIGKILL)
        os.waitpid(term.pid, 0)
        raise
    term.press(key)
    return term.exit_status(), term.text()


@pytest.mark.parametrize(("key", "name"), [(b"q", "q"), (b"\x03", "Ctrl-C")])
async def test_top_on_a_terminal_shows_state_and_quits_cleanly(
    redis_url: str, redis: aioredis.Redis, streams: Streams, key: bytes, name: str
) -> None:
    """The dashboard appears on a real terminal with Redis' numbers; q and Ctrl-C both exit 0."""
    now = int(time.time() * 1000)
    this_min = now - now % MINUTE
    await seed_dashboard(
        redis,
        dash_prefix(streams),
        [liq("bybit", "ETH", "long", "250000.5", this_min + 1), liq("bybit", "ETH", "short", "1000", this_min + 2)],
        [cascade("ETH", this_min - 30_000, "critical", 1.42, "4200000")],
    )
    env = {k: v for k, v in env_for(redis_url, streams).items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"

    status, text = await asyncio.to_thread(
        _session, env, key, ("last 1h: $251,000.50 (2 events)", "critical", "1.42", "$250,000.50")
    )

    assert status == 0, f"exit status {status} after {name}:\n{text[-2000:]}"
    assert "Traceback" not in text
