"""The checkers the deploy tests rely on catch what they are for (a checker that passes everything
would make those tests worthless)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.deploy import artifacts
from tests.deploy.exported import sample_names
from tests.deploy.grafana_sql import MacroError, TimeRange, expand
from tests.deploy.promql import PromQLScanError, metric_names, selectors

END = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
RANGE = TimeRange(END - timedelta(hours=1), END, "5m")


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up == 0", {"up"}),
        ('sum by (exchange, market) (rate(liq_x_total{exchange=~"a|b"}[5m]))', {"liq_x_total"}),
        ("sum(rate(a_total[5m])) by (le) / ignoring (le) group_left b", {"a_total", "b"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m] offset 1h)))", {"h_bucket"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)") > bool 0', {"m"}),
        ('count_values("version", build_info) and on (instance) up', {"build_info", "up"}),
        ("time() - last_ts > 1e3 unless absent(other) or vector(0)", {"last_ts", "other"}),
        ('{__name__="named", job="x"}', {"named"}),
        ("topk(5, max_over_time(g[1h:5m]))", {"g"}),
        ("# a comment mentioning fake_metric\nreal_metric", {"real_metric"}),
    ],
)
def test_promql_scanner_finds_exactly_the_metrics(expr: str, names: set[str]) -> None:
    """Metric names are found; functions, keywords, strings, labels and durations are not names."""
    assert metric_names(expr) == names


def test_promql_scanner_reports_label_matchers() -> None:
    """Matcher label names attach to their selector (so unknown labels can be caught)."""
    found = selectors('a{x="1", y!~"2"} + b')
    assert [(s.metric, s.labels) for s in found] == [("a", ["x", "y"]), ("b", [])]


@pytest.mark.parametrize("expr", ["rat(x[5m])", "sum(rate(x[$__rate_interval]))", 'x{job="a"', "sum(x) by (le"])
def test_promql_scanner_refuses_what_it_cannot_vouch_for(expr: str) -> None:
    """An unknown function, a leftover Grafana variable or unbalanced brackets is an error."""
    with pytest.raises(PromQLScanError):
        selectors(expr)


def test_sample_names_follow_the_exposition_format() -> None:
    """Counters expose _total/_created, histograms _bucket (with le)/_sum/_count, gauges their name."""
    names = sample_names(
        [
            {"name": "c", "type": "counter", "labels": ["a"]},
            {"name": "h", "type": "histogram", "labels": []},
            {"name": "g", "type": "gauge", "labels": ["b"]},
        ]
    )
    assert set(names) == {"c_total", "c_created", "h_bucket", "h_sum", "h_count", "h_created", "g"}
    assert names["h_bucket"] == {"le"}
    assert names["c_total"] == {"a"}


def test_grafana_macros_expand_like_grafana() -> None:
    """Time filter, time groups, epoch bounds, and multi-value variables quoted for SQL."""
    sql = expand(
        "SELECT $__timeGroupAlias(ts, $__interval), v FROM t WHERE $__timeFilter(ts) AND e IN ($ex)"
        " AND a = '$asset' AND $__unixEpochFilter(s) AND ms > $__from",
        RANGE,
        {"ex": ["binance", "by'bit"], "asset": "BTC"},
    )
    assert sql == (
        'SELECT floor(extract(epoch from ts)/300)*300 AS "time", v FROM t'
        " WHERE ts BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-01T01:00:00Z' AND e IN ('binance','by''bit')"
        " AND a = 'BTC' AND s >= 1767225600 AND s <= 1767229200 AND ms > 1767225600000"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 WHERE $__timeFiltre(ts)",  # unknown macro
        "SELECT 1 WHERE x = $unknown",  # unknown variable
        "SELECT $__timeGroup(ts) FROM t",  # missing interval
        "SELECT $__timeGroup(date_trunc('minute', ts), 1m) FROM t",  # ')' inside: Grafana's pattern breaks
        "SELECT 1 WHERE x > $__rate_interval",  # a Prometheus variable in SQL
    ],
)
def test_grafana_macro_errors_are_caught(sql: str) -> None:
    """What Grafana would not expand fails here instead of reaching PostgreSQL as garbage."""
    with pytest.raises(MacroError):
        expand(sql, RANGE, {})


def test_env_file_and_compose_interpolation(tmp_path: Path) -> None:
    """Single quotes are literal; ${VAR} uses earlier lines; ${VAR:-default} falls back when empty."""
    path = tmp_path / ".env"
    path.write_text('# comment\nA=secret\nURL=redis://:${A}@h:1/0\nJSON=\'[{"k":"${A}"}]\'\nEMPTY=\n')
    env = artifacts.read_env_file(path)
    assert env == {"A": "secret", "URL": "redis://:secret@h:1/0", "JSON": '[{"k":"${A}"}]', "EMPTY": ""}
    assert artifacts.interpolate("${EMPTY:-d} ${A:-d} ${MISSING-x} $$HOME", env) == "d secret x $HOME"
    with pytest.raises(KeyError):
        artifacts.interpolate("${MISSING}", env)
    assert artifacts.interpolations("a ${X:-1} $${NOT} ${Y}") == [("X", "1"), ("Y", None)]


def test_durations() -> None:
    """Compose durations in seconds; junk is refused."""
    assert artifacts.duration_seconds("1m30s") == 90
    assert artifacts.duration_seconds("500ms") == 0.5
    with pytest.raises(ValueError, match="bad duration"):
        artifacts.duration_seconds("30 seconds")
