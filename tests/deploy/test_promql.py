"""Every PromQL expression of the dashboards and alert rules names metrics the services really export.

"Really export" is read from the services' own Prometheus registries (``exported`` fixture), not from
a list kept here, so renaming a metric in a service breaks this test until the dashboards follow.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import artifacts
from tests.deploy.promql import BUILTIN_SERIES, TARGET_LABELS, PromQLScanError, metric_names, selectors

PROMETHEUS_TYPES = {"prometheus"}
# Grafana's built-in interval variables, substituted with a plausible value before scanning.
GRAFANA_INTERVALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h", "__range_s": "21600"}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$", re.DOTALL)


def rule_expressions() -> list[tuple[str, str]]:
    """(where, expr) of every alerting and recording rule."""
    found = []
    for path in sorted((artifacts.PROMETHEUS / "rules").glob("*.yml")):
        for group in artifacts.load_yaml(path)["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                found.append((f"{path.name} {name}", str(rule["expr"])))
    return found


def recorded_names() -> set[str]:
    """Names of recording rules (series Prometheus creates itself)."""
    names: set[str] = set()
    for path in sorted((artifacts.PROMETHEUS / "rules").glob("*.yml")):
        for group in artifacts.load_yaml(path)["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


def _substitute(expr: str, dashboard: dict[str, Any]) -> str:
    """Grafana's variable step for a Prometheus query: ``$var``/``${var}``/``[[var]]`` replaced."""
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[3]
        if name in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[name]
        if name not in variables:
            raise AssertionError(f"{expr!r} uses ${name}, which the dashboard does not define")
        return str(variables[name].get("allValue") or "x")

    return re.sub(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]", replace, expr)


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expr) of every Prometheus query in the dashboards, variables substituted."""
    found = []
    for file, dashboard in artifacts.dashboards().items():
        for where, datasource, query in artifacts.queries(dashboard):
            if datasource.get("type") not in PROMETHEUS_TYPES:
                continue
            expr = query.get("expr") or query.get("query")
            assert expr, f"{file} {where}: Prometheus query without an expression"
            expr = _substitute(str(expr), dashboard)
            variable = _LABEL_VALUES.match(expr)
            if variable is not None:
                expr = variable[1]  # label_values(selector, label): the selector is PromQL
            found.append((f"{file} {where}", expr))
    return found


ALL_EXPRESSIONS = rule_expressions() + dashboard_expressions()


def test_dashboards_and_rules_have_promql_to_check() -> None:
    """The collection above finds the rules and the pipeline-health queries (so the checks below run)."""
    assert len(rule_expressions()) >= 6
    assert len(dashboard_expressions()) >= 20


@pytest.mark.parametrize(("where", "expr"), ALL_EXPRESSIONS, ids=[w for w, _ in ALL_EXPRESSIONS])
def test_expression_names_only_exported_metrics(where: str, expr: str, exported: dict[str, set[str]]) -> None:
    """Each metric name in the expression is a sample name some scraped service's registry exports
    (counters as ``_total``, histograms as ``_bucket``/``_sum``/``_count``), a series Prometheus makes
    (``up``, ``ALERTS``) or a recording rule; each label matcher names a label the metric has."""
    try:
        found = selectors(expr)
    except PromQLScanError as exc:
        pytest.fail(f"{where}: {exc}")
    assert found, f"{where}: no metric in {expr!r}"
    known = set(exported) | BUILTIN_SERIES | recorded_names()
    unknown = sorted({s.metric for s in found if s.metric is not None} - known)
    assert not unknown, f"{where}: {unknown} not exported by any scraped service (expr {expr!r})"
    for selector in found:
        if selector.metric is None or selector.metric not in exported:
            continue
        allowed = exported[selector.metric] | TARGET_LABELS
        bad = sorted(set(selector.labels) - allowed)
        assert not bad, f"{where}: {selector.metric} has no label(s) {bad}; it has {sorted(allowed)}"


def test_dashboard_promql_is_valid_syntax(tmp_path: Path, promtool: str) -> None:
    """promtool parses every dashboard expression (rules are parsed by `promtool check config`)."""
    rules = [{"record": f"dashboard_check:{i}", "expr": expr} for i, (_, expr) in enumerate(dashboard_expressions())]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_exported_metrics_come_from_the_services(exported: dict[str, set[str]]) -> None:
    """Sanity of the probe: metrics of the shared runner, the feeds and a service-own module are there,
    with their sample suffixes and labels."""
    assert "liq_consumer_lag_entries" in exported
    assert {"liq_events_published_total", "liq_events_published_created"} <= set(exported)
    assert "liq_persister_batch_seconds_bucket" in exported
    assert "le" in exported["liq_persister_batch_seconds_bucket"]
    assert "liq_events_published" not in exported  # a counter's bare family name is no series
    assert metric_names("rate(liq_events_published_total[5m])") == {"liq_events_published_total"}


def _legends() -> list[tuple[str, str, str]]:
    """(where, expr, legendFormat) of every dashboard Prometheus target with a legend."""
    found = []
    for file, dashboard in artifacts.dashboards().items():
        for panel in artifacts.panels(dashboard):
            for target in panel.get("targets", []):
                legend = str(target.get("legendFormat") or "")
                if (target.get("datasource") or panel["datasource"]).get("type") in PROMETHEUS_TYPES and legend:
                    found.append((f"{file} {panel['title']!r}", _substitute(str(target["expr"]), dashboard), legend))
    return found


def test_legends_use_labels_the_series_keep(exported: dict[str, set[str]]) -> None:
    """A {{label}} in a legend is a label the result still has: one of the ``by (...)`` labels when the
    expression aggregates, else a label of its metrics (a wrong one renders as an empty legend)."""
    legends = _legends()
    assert len(legends) >= 20
    for where, expr, legend in legends:
        wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        grouped = re.findall(r"\bby\s*\(([^)]*)\)", expr)
        if grouped:
            kept = {label.strip() for group in grouped for label in group.split(",")}
        else:
            kept = set(TARGET_LABELS)
            for name in metric_names(expr):
                kept |= exported.get(name, set())
        assert wanted <= kept, f"{where}: legend {legend!r} uses {sorted(wanted - kept)}, not in {sorted(kept)}"
