"""The detector's inlined per-event paths give exactly what their plain definitions give.

* :meth:`AssetWindow.add_quiet` inlines ``add``, ``evict`` and ``rejects`` (sums and minute totals kept
  in locals); an engine whose ``add_quiet`` is a plain loop over those methods must produce byte-identical
  cascade states, window contents, float sums, baselines, ring buffers and dashboard writes.
* A digest of all of that on a fixed mixed workload was recorded with the engine and dashboard as they
  were before the per-event optimisations; it pins the output (record it again only for an intended
  change of behaviour, with a note in the commit).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from liq_common.events import Liquidation
from liq_detector.config import EngineConfig
from liq_detector.dashboard import Dashboard
from liq_detector.engine import Engine
from liq_detector.window import END, AssetWindow, Rec
from tests.detector.scenarios import T0, Scenario, liq, shuffled_within

MIN = 60_000
PINNED = "ecbc314a2a569fa5f241a078045ecafdeeb108269ac98de17e1f8632eeb7c17a"


def workload(seed: int) -> list[Liquidation]:
    """Six assets of background flow with one-sided cascades and chop, some delivered late or twice."""
    rng = random.Random(seed)
    sc = Scenario(seed=seed)
    bases = [f"X{k}" for k in range(6)]
    for base in bases:
        sc.background(base, T0, 30, rng.choice([5_000, 50_000, 300_000]), rng.choice([0.2, 3_000.0, 90_000.0]))
    for _ in range(6):
        base, start = rng.choice(bases), T0 + rng.randrange(5, 30) * MIN + rng.randrange(0, MIN)
        if rng.random() < 0.6:
            side = rng.choice(["long", "short"])
            sc.cascade(base, start, rng.randrange(10, 90), rng.choice([2e5, 1e6, 5e6]), 100.0, rng.uniform(-3, 3), side)
        else:
            sc.chop(base, start, rng.randrange(10, 60), rng.choice([2e5, 3e6]), 100.0)
    events = shuffled_within(sc.sorted(), 6_000, seed)  # part of it later than the 3 s lateness
    return events + rng.sample(events, len(events) // 20)  # redeliveries


def dense(n: int) -> list[Liquidation]:
    """Many events per tick on 20 assets, several per symbol and venue (the window's busy path)."""
    rng = random.Random(n)
    out = []
    for i in range(n):
        base = f"D{int(rng.paretovariate(1.2)) % 20}"
        exchange, market = rng.choice([("bybit", "linear"), ("binance", "linear"), ("binance", "inverse")])
        side = "long" if rng.random() < 0.55 else "short"
        out.append(liq(base, T0 + i * 25, side, rng.uniform(100, 40_000), 50.0, exchange, market, n=i))
    return out


def run(events: list[Liquidation], batch: int, cfg: EngineConfig, idle_every: int = 0) -> list[Any]:
    """Everything observable: states per call, accepted events, dashboard writes, final engine state."""
    engine = Engine(cfg)
    dash = Dashboard("t:", 100, 0.1, 15_000, 20)
    trace: list[Any] = []
    for k, i in enumerate(range(0, len(events), batch)):
        trace.append([msgspec.json.encode(s) for s in engine.ingest(events[i : i + batch])])
        trace.append([(e.event_id, usd, price) for e, usd, price in engine.accepted])
        dash.add(engine.accepted, write=k % 7 != 6)
        if k % 3 == 0:
            dash.baselines(engine.baseline_updates())
            trace.append(dash.commands()[0])
        if idle_every and k % idle_every == 1:
            trace.append([msgspec.json.encode(s) for s in engine.advance_to(engine.watermark + 20_000)])
    trace.append([msgspec.json.encode(s) for s in engine.drain()])
    dash.baselines(engine.baseline_updates())
    trace += [dash.commands()[0], dash.stale, engine.late, engine.duplicates, engine.watermark]
    for base in sorted(engine.assets):
        a = engine.assets[base]
        trace.append((base, a.long_usd, a.short_usd, [r[1] for r in a.events], sorted(a.seen), a.next_tick))
        trace.append((sorted(a.history.minutes.items()), a.history.first, a.threshold_key, a.threshold, a.reopen_after))
    trace += [(key, ring.recent()) for key, ring in sorted(engine.rings.rings.items())]
    return trace


Case = tuple[str, Callable[[], list[Liquidation]], int, EngineConfig, int]
"""(name, events, batch size, engine config, advance the watermark while idle every n batches or 0)."""

CASES: list[Case] = [
    ("mixed b1", lambda: workload(1), 1, EngineConfig(), 0),
    ("mixed b13 idle", lambda: workload(2), 13, EngineConfig(), 4),
    ("mixed b500", lambda: workload(3), 500, EngineConfig(update_usd_growth=0.0), 0),
    ("dense b250", lambda: dense(12_000), 250, EngineConfig(floor_usd=1_000.0, warmup_minutes=0, open_multiple=1.1), 0),
    (
        "dense b7 idle",
        lambda: dense(4_000),
        7,
        EngineConfig(floor_usd=1_000.0, warmup_minutes=1, open_multiple=1.05, quiet_ms=5_000, close_fraction=0.9),
        3,
    ),
]


def plain_add_quiet(
    self: AssetWindow, recs: list[Rec], i: int, group: int, tick: int, window_ms: int, min_events: int
) -> tuple[int, int]:
    """``add_quiet`` as its definition: add, and at each completed tick evict and apply the rejects."""
    for j in range(i, len(recs)):
        rec = recs[j]
        start = -2 if rec is END else rec[0] - rec[0] % tick
        if start != group:
            if group >= 0:
                before = group + tick - window_ms
                self.evict(before)
                if not self.rejects(before, min_events):
                    return j, group
            if rec is END:
                return j, -1
            group = start
        self.add(rec)
    raise AssertionError("records must end with END")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_inlined_window_path_matches_its_definition(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path and the plain methods agree on every state, sum and write (floats bit for bit)."""
    _, make, batch, cfg, idle = case
    events = make()
    fast = run(events, batch, cfg, idle)
    monkeypatch.setattr(AssetWindow, "add_quiet", plain_add_quiet)
    plain = run(events, batch, cfg, idle)
    assert opened(fast) > 0  # every case exercises the opening path
    assert fast == plain


def opened(trace: list[Any]) -> int:
    """Cascade openings in a trace."""
    return sum(1 for x in trace if isinstance(x, list) for s in x if isinstance(s, bytes) and b'"status":"open"' in s)


def digest_of_cases() -> tuple[str, int]:
    """(sha256 of every case's trace, cascade openings in them)."""
    digest, openings = hashlib.sha256(), 0
    for _, make, batch, cfg, idle in CASES:
        trace = run(make(), batch, cfg, idle)
        openings += opened(trace)
        digest.update(repr(trace).encode())  # repr of a float is exact
    return digest.hexdigest(), openings


def test_output_is_pinned() -> None:
    """States, windows, baselines, rings and dashboard writes hash to the value recorded before the
    per-event optimisations (so they are unchanged), on a workload that opens cascades."""
    digest, openings = digest_of_cases()
    assert openings >= 10
    assert digest == PINNED
