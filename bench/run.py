"""`make bench`: run every bench/bench_*.py, print one table, write bench-results.json.

Each benchmark module exposes ``run() -> list[dict]`` with rows
``{"stage", "metric", "value", "unit", "target", "higher_is_better", "note"}`` (built by ``bench/rows.py``).
Rows whose metric ends in ``ratio_to_raw_limit`` (a stage's saturated rate over its raw limit measured in
the same run: parse vs json.loads, publish vs a raw client XADD loop, detector vs the bare consumer loop,
persister vs raw binary COPY, simulator vs a bare websockets writer) are repeated in a summary after the
table. A module that fails is reported as a failed row and the others still run. ``BENCH_ONLY=name1,name2``
limits the modules.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def verdict(row: dict[str, Any]) -> str:
    target = row.get("target")
    if target is None:
        return ""
    ok = row["value"] >= target if row.get("higher_is_better", True) else row["value"] <= target
    return "ok" if ok else "BELOW TARGET"


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    only = {n for n in os.environ.get("BENCH_ONLY", "").split(",") if n}
    rows: list[dict[str, Any]] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        started = time.perf_counter()
        try:
            module_rows = load(path).run()
        except Exception as exc:
            traceback.print_exc()
            module_rows = [
                {
                    "stage": name,
                    "metric": "FAILED",
                    "value": 0.0,
                    "unit": "",
                    "target": None,
                    "higher_is_better": True,
                    "note": repr(exc),
                }
            ]
        for row in module_rows:
            row.setdefault("note", "")
            row["module"] = name
        rows.extend(module_rows)
        print(f"[{name}: {time.perf_counter() - started:.1f}s]", file=sys.stderr)
    width = max((len(f"{r['stage']} / {r['metric']}") for r in rows), default=10)
    print(f"\n{'stage / metric':<{width}}  {'value':>14} {'unit':<10} {'target':>12}  verdict")
    print("-" * (width + 52))
    for r in rows:
        target = "" if r.get("target") is None else f"{r['target']:,.0f}" if r["target"] >= 100 else f"{r['target']}"
        value = f"{r['value']:,.0f}" if abs(r["value"]) >= 100 else f"{r['value']:.3f}"
        print(
            f"{r['stage'] + ' / ' + r['metric']:<{width}}  {value:>14} {r['unit']:<10} {target:>12}  {verdict(r)}"
            + (f"  ({r['note']})" if r["note"] else "")
        )
    ratios = [r for r in rows if r["metric"].endswith("ratio_to_raw_limit")]
    if ratios:
        print("\nstage ratios to their raw limits (issue 11: none below 50 %):")
        for r in ratios:
            print(f"  {r['stage'] + ' / ' + r['metric']:<{width}}  {r['value']:>7.0%}  {verdict(r)}")
    result = {"machine": machine(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows}
    (HERE.parent / "bench-results.json").write_text(json.dumps(result, indent=2, default=str))
    print("\nmachine:", json.dumps(result["machine"]))
    print("written: bench-results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
