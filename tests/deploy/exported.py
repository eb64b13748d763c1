"""The metric names the services really export, read from their Prometheus registries.

Each service's package is imported in a fresh interpreter (every module of ``liq_<service>``, plus
``liq_common.metrics`` and every ``liq_common.ingest`` module), so the metrics it declares register in
``prometheus_client``'s default registry exactly as in the running process, and two services can
never clash on a name inside one test process. The result maps every *sample* name Prometheus will
store (``liq_x_total``, ``liq_x_created``, ``liq_x_bucket``, ...) to the label names it carries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

# Sample names of one metric family, by type, as the text exposition format writes them.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
EXTRA_LABELS = {"_bucket": ("le",), "": ()}

_PROBE = r"""
import importlib, json, pkgutil, sys
from prometheus_client import REGISTRY

def walk(name):
    pkg = importlib.import_module(name)
    yield name
    for info in pkgutil.walk_packages(pkg.__path__, name + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("__main__"):
            yield info.name

for module in ["liq_common.metrics", *walk("liq_common.ingest"), *walk(sys.argv[1])]:
    importlib.import_module(module)

families = []
for collector in list(REGISTRY._collector_to_names):
    labels = list(getattr(collector, "_labelnames", ()))
    described = collector.describe() if hasattr(collector, "describe") else []
    for family in described or collector.collect():
        sample_labels = sorted({k for s in family.samples for k in s.labels})
        families.append({"name": family.name, "type": family.type, "labels": labels or sample_labels})
json.dump(families, sys.stdout)
"""


def families_of(package: str) -> list[dict[str, object]]:
    """Metric families registered by ``package`` (a ``liq_<service>`` import name) and what it imports."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, package], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"importing every module of {package} failed:\n{result.stderr[-4000:]}")
    families: list[dict[str, object]] = json.loads(result.stdout)
    return families


def sample_names(families: list[dict[str, object]]) -> dict[str, set[str]]:
    """Sample name -> label names, for the families of one registry."""
    names: dict[str, set[str]] = {}
    for family in families:
        base = str(family["name"])
        labels = {str(label) for label in family["labels"]}  # type: ignore[attr-defined]
        for suffix in SUFFIXES.get(str(family["type"]), ("",)):
            names.setdefault(base + suffix, set()).update(labels, EXTRA_LABELS.get(suffix, ()))
            if family["type"] == "summary" and suffix == "":
                names[base].add("quantile")
    return names


def exported_by(packages: list[str]) -> dict[str, dict[str, set[str]]]:
    """For each package, its sample names and their labels (probed in parallel subprocesses)."""
    with ThreadPoolExecutor(max_workers=min(4, len(packages) or 1)) as pool:
        probed = dict(zip(packages, pool.map(families_of, packages), strict=True))
    return {package: sample_names(families) for package, families in probed.items()}
