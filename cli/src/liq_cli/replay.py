"""``liq replay FILE``: publish a JSON-lines file of normalised liquidations to the events stream.

Each line is one :class:`liq_common.events.Liquidation` as JSON (what ``redis-cli XRANGE liq:events``
shows in the ``data`` field, or what a ``liq:events`` dump holds). Events go out at their original
pacing (exchange time ``ts``) divided by ``--speed``; ``--speed 0`` sends as fast as Redis takes them.
Events due at the same moment go out in one pipelined batch. A line that is not a valid liquidation is
reported once on stderr with its line number and skipped; every good line is still published. Blank
lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from liq_common.codec import encode
from liq_common.events import Liquidation
from liq_common.streams import xadd_many

MAX_BATCH = 1000
"""Most entries in one pipelined XADD round trip."""

_decoder = msgspec.json.Decoder(Liquidation)


@dataclass
class Outcome:
    """What a replay did: entries published and lines rejected."""

    published: int = 0
    rejected: int = 0


def read_events(path: Path, errors: Console) -> Iterator[Liquidation]:
    """The liquidations of ``path`` in file order; bad lines are reported on ``errors`` and skipped."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.lstrip().startswith(b"#"):
                continue
            try:
                yield _decoder.decode(line)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                errors.print(f"{path}:{number}: skipped, not a liquidation: {exc}", markup=False, highlight=False)


def count_lines(path: Path) -> int:
    """Lines of ``path`` that are neither blank nor comments (the progress bar's total)."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip() and not line.lstrip().startswith(b"#"))


async def replay(
    client: aioredis.Redis,
    path: Path,
    *,
    stream: str,
    maxlen: int,
    speed: float,
    rebase_time: bool = False,
    console: Console | None = None,
) -> Outcome:
    """Publish the events of ``path`` to ``stream``, paced by their ``ts`` divided by ``speed`` (0: no pacing).

    With ``rebase_time`` every ``ts``/``recv_ts`` is shifted so that the first event happens now (the
    live dashboard then shows the replay as current); event ids are kept.
    """
    out = console or Console(stderr=True)
    total = count_lines(path)
    outcome = Outcome()
    batch: list[bytes] = []
    first_ts: int | None = None
    offset = 0
    started = time.monotonic()
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("replay", total=total)

        async def flush() -> None:
            if batch:
                await xadd_many(client, stream, batch, maxlen)
                outcome.published += len(batch)
                progress.update(task, completed=outcome.published + outcome.rejected)
                batch.clear()

        for event in read_events(path, out):
            if first_ts is None:
                first_ts, started = event.ts, time.monotonic()
                offset = int(time.time() * 1000) - event.ts if rebase_time else 0
            if speed > 0:
                delay = started + (event.ts - first_ts) / 1000 / speed - time.monotonic()
                if delay > 0:
                    await flush()
                    await asyncio.sleep(delay)  # pacing is the point of a replay, not synchronisation
            if offset:
                event = msgspec.structs.replace(event, ts=event.ts + offset, recv_ts=event.recv_ts + offset)
            batch.append(encode(event))
            if len(batch) >= MAX_BATCH:
                await flush()
        await flush()
        outcome.rejected = total - outcome.published
        progress.update(task, completed=total)
    return outcome
