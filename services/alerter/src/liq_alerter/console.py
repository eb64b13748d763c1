"""Console sink: each post and edit as one plain line on standard output (for ``make demo``)."""

from __future__ import annotations

import itertools
import sys
from typing import TextIO

from liq_alerter.content import facts, join_limited
from liq_alerter.delivery import Result
from liq_common.events import Cascade


def line(action: str, message_id: str, state: Cascade) -> str:
    """One human-readable line for a post (``NEW``) or an edit (``EDIT``) of message ``message_id``."""
    f = facts(state)
    return (
        f"[{action} #{message_id}] {f.title} | total {f.total} | {f.count} liquidations | longs {f.longs} | "
        f"shorts {f.shorts} | move {f.move} | {f.duration} | risk {f.risk} | "
        f"{join_limited(f.exchanges, 200)} | {join_limited(f.symbols, 300)} | {f.summary}"
    )


class ConsoleSink:
    """Writes alerts to ``stream`` (standard output by default); never fails."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._ids = itertools.count(1)

    async def post(self, state: Cascade) -> Result:
        """Print a new alert; its message id is a per-process counter."""
        message_id = str(next(self._ids))
        self._write(line("NEW", message_id, state))
        return Result("ok", message_id=message_id)

    async def edit(self, message_id: str, state: Cascade) -> Result:
        """Print the update of alert ``message_id``."""
        self._write(line("EDIT", message_id, state))
        return Result("ok", message_id=message_id)

    async def aclose(self) -> None:
        """Nothing to close."""

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()
