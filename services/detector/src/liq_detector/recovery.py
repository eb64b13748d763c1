"""Restart reconciliation: align a silently replayed engine with the cascade states already published.

The replay reproduces every cascade whose opening window lies inside it, with the same ids and states
(the engine is deterministic). What the replay produced beyond the last published state of a cascade
was lost in the crash and is published now; everything up to it is not published again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from liq_common.events import Cascade
from liq_detector.cascade import CascadeBuilder
from liq_detector.window import UNSET

if TYPE_CHECKING:
    from liq_detector.engine import Engine


def reconcile(engine: Engine, replayed: list[Cascade], published: Mapping[str, Cascade]) -> list[Cascade]:
    """States to publish after a replay; adjusts the engine's open cascades to match what was published.

    Args:
        engine: The engine after the silent replay.
        replayed: States the replay produced, in order.
        published: Latest published state per cascade id (read back from the cascades stream).

    Rules: a cascade published as closed is dropped from the engine (never reopened); a cascade published
    as open that the replay did not reproduce (it started before the replay) is adopted from its last
    state, replacing any partial duplicate the truncated replay opened on that asset, or closed if the
    asset has a different, genuine cascade; replayed states newer than the published ones are returned.
    """
    seen = {state.cascade_id for state in replayed}
    open_now = engine.open_cascades()
    dropped: set[str] = set()
    closes: list[Cascade] = []
    for cid, last in published.items():
        if last.status == "close":
            builder = open_now.get(cid)
            if builder is not None:
                a = engine.assets[builder.base]
                a.cascade = None
                a.reopen_after = max(a.next_tick, 0) + engine.cfg.window_ms
            continue
        if cid in seen:
            continue  # reproduced by the replay: its newer states, if any, are published below
        a = engine.asset(last.base)
        if a.cascade is not None and a.cascade.cascade_id not in published:
            # Opened by a replay that started inside the published cascade: a partial duplicate.
            dropped.add(a.cascade.cascade_id)
            a.cascade = None
        if a.cascade is None:
            _, ref_usd, ref_events = engine.threshold(a, a.next_tick if a.next_tick != UNSET else last.window_end)
            threshold = ref_usd * engine.rule(last.base).open_multiple
            builder = CascadeBuilder.adopt(last, threshold, ref_usd, ref_events)
            for rec in a.events:
                if rec[0] > last.window_end:
                    builder.add(rec[0], rec[5])
            a.cascade = builder
            if a.next_tick == UNSET:  # no replayed event of this asset: evaluate from after the published state
                tick = engine.cfg.tick_ms
                a.next_tick = last.window_end - last.window_end % tick + tick
            engine.watch(last.base)
        else:
            closes.append(msgspec.structs.replace(last, status="close", seq=last.seq + 1))
    out = [s for s in replayed if s.cascade_id not in dropped and _unpublished(s, published.get(s.cascade_id))]
    return out + closes


def _unpublished(state: Cascade, last: Cascade | None) -> bool:
    """True when ``state`` is newer than the last published state of its cascade (and that is not a close)."""
    return last is None or (state.seq > last.seq and last.status != "close")
