"""Exchange connections dropped and stalled, malformed frames mixed in, all during one run.

Faults come from the simulator's fault plans (services/exchange-sim/README.md "Faults"):

* ``drop_after_frames``: Binance USD-M and Bybit inverse connections lose TCP (no close frame, the client
  sees 1006) every few hundred frames, all run long; the ingestors reconnect.
* ``malformed``: every kind (bad JSON, wrong types, missing fields, NaN, negative numbers, a frame over
  1 MiB) is injected on the Binance COIN-M and Bybit linear connections.
* ``stall``: then those two connections go silent (no frames, no pongs); the ingestors' keepalive must
  notice and reconnect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from liq_exchange_sim.faults import MALFORMED_KINDS
from liq_exchange_sim.truth import Feed
from tests.conftest import Streams
from tests.e2e.checks import assert_no_duplicate_alerts, assert_stored_exactly
from tests.e2e.pipeline import Pipeline, assert_clean_exit, pipeline

DROPPED: dict[Feed, int] = {"binance_usdm": 250, "bybit_inverse": 100}
CORRUPTED: tuple[Feed, ...] = ("binance_coinm", "bybit_linear")
PER_KIND = 2


async def inject(run: Pipeline) -> None:
    """Malformed frames of every kind on two feeds, then a stall of those feeds' connections."""
    sim = run.sim
    await sim.wait_for(lambda s: s.stats.frames_sent >= 300, timeout=120)
    for kind in MALFORMED_KINDS:
        for feed in CORRUPTED:
            conn = sim.connections(feed)[-1]
            conn.faults.malformed, conn.faults.malformed_count = kind, PER_KIND
            await sim.wait_for(lambda s, c=conn: c.faults.malformed is None or c.closing, timeout=60)  # type: ignore[misc]
    for feed in CORRUPTED:
        stalled = sim.connections(feed)[-1]
        stalled.faults.stall = True
        stalled.sync_faults()
        await sim.wait_for(
            lambda s, f=feed, old=stalled: any(c is not old and c.stats.subscriptions > 0 for c in s.connections(f)),  # type: ignore[misc]
            timeout=60,
        )
        stalled.faults.stall = False  # let the old socket see the client's close
        stalled.sync_faults()


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_dropped_stalled_and_malformed(redis_url: str, streams: Streams, pg_url: str, tmp_path: Path) -> None:
    """Promised: every liquidation the exchange delivered in a good frame is stored once; nothing else.

    A dropped connection loses only what the exchange sends while the client is away, which it never
    delivered (not in the ledger); frames written before the drop are still read. A stalled connection
    delivers nothing (its frames are discarded, not in the ledger) until the keepalive replaces it. A
    malformed frame is rejected and counted, the frames around it are handled, and nothing of it is
    published (ledger kind ``corrupted``). Overlapping or repeated frames are dropped by event id. So the
    database equals the delivered ledger exactly, and no alert is posted twice.
    """
    env = {"PING_INTERVAL": "0.5", "PING_TIMEOUT": "1", "RECONNECT_BASE": "0.1", "RECONNECT_CAP": "0.5"}
    async with pipeline(redis_url, streams, pg_url, tmp_path, env=env) as run:
        for feed, frames in DROPPED.items():
            run.sim.set_faults(feed, drop_after_frames=frames)
        await run.play_during(inject(run))
        await assert_stored_exactly(run)
        corrupted = run.sim.ledger.totals(kinds=("corrupted",))
        assert sum(t.count for t in corrupted.values()) >= PER_KIND * len(MALFORMED_KINDS) * len(CORRUPTED)
        rejected = sum(run.processes[n].metric("liq_frames_rejected_total") for n in ("ingest-binance", "ingest-bybit"))
        assert rejected >= PER_KIND * len(MALFORMED_KINDS) * len(CORRUPTED)
        assert run.sim.stats.closes["drop_fault"] >= 2 * len(DROPPED)
        assert_no_duplicate_alerts(run)
    assert_clean_exit(run)
