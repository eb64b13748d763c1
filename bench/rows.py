"""The one result-row shape every ``bench_*`` module returns to ``bench/run.py``."""

from __future__ import annotations

from typing import Any


def row(
    stage: str, metric: str, value: float, unit: str, target: float | None, note: str = "", *, higher: bool = True
) -> dict[str, Any]:
    """A result row; ``target`` is the bound the value is judged against (None: reported only), ``higher``
    says which side of it is good. Values keep three decimals."""
    return {
        "stage": stage,
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "target": target,
        "higher_is_better": higher,
        "note": note,
    }
