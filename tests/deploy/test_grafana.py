"""Grafana provisioning: fixed datasource uids that every dashboard query resolves to, dashboards that
load where compose mounts them, and the panels the issue asks for."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy import artifacts

DASHBOARDS = artifacts.dashboards()
DATASOURCES = {ds["uid"]: ds for ds in artifacts.datasources()}
GRAFANA = artifacts.compose()["services"]["grafana"]


def test_datasources_have_fixed_unique_uids() -> None:
    """One Prometheus and one PostgreSQL datasource, each with a fixed uid."""
    sources = artifacts.datasources()
    assert len(DATASOURCES) == len(sources)
    assert {ds["type"] for ds in sources} == {"prometheus", "grafana-postgresql-datasource"}
    assert DATASOURCES["liq-prometheus"]["url"] == "http://prometheus:9090"
    assert "prometheus" in artifacts.compose()["services"]


def test_postgres_datasource_uses_the_read_only_role_and_its_secret() -> None:
    """Grafana logs in as liq_dashboard (created by the persister's roles.sql) to database liq on the
    timescaledb service, with the password read from a compose secret granted to Grafana."""
    pg = DATASOURCES["liq-postgres"]
    assert pg["url"] == "timescaledb:5432"
    assert pg["jsonData"]["database"] == "liq"
    assert pg["user"] == "liq_dashboard"
    roles = (artifacts.ROOT / "services/persister/sql/roles.sql").read_text()
    assert re.search(r"CREATE ROLE liq_dashboard LOGIN .* IN ROLE liq_reader", roles)
    secret = re.fullmatch(r"\$__file\{/run/secrets/(\w+)\}", pg["secureJsonData"]["password"])
    assert secret is not None
    assert secret[1] in GRAFANA["secrets"]


@pytest.mark.parametrize("file", sorted(DASHBOARDS))
def test_every_query_uses_a_provisioned_datasource(file: str) -> None:
    """Panel targets, template variables and annotations reference a provisioned uid of their type."""
    dashboard = DASHBOARDS[file]
    count = 0
    for where, datasource, _ in artifacts.queries(dashboard):
        assert datasource["uid"] in DATASOURCES, f"{file} {where}: unknown datasource {datasource}"
        assert datasource["type"] == DATASOURCES[datasource["uid"]]["type"], f"{file} {where}"
        count += 1
    for panel in artifacts.panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in DATASOURCES, f"{file} panel {panel['title']!r}"
    assert count >= 10


@pytest.mark.parametrize("file", sorted(DASHBOARDS))
def test_dashboard_layout(file: str) -> None:
    """Unique uid and panel ids; every panel inside the 24-column grid; no two panels overlap."""
    dashboard = DASHBOARDS[file]
    assert dashboard["uid"]
    assert len(dashboard["uid"]) <= 40
    panels = list(artifacts.panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))


def test_compose_mounts_the_provisioning_and_dashboards_where_grafana_reads_them() -> None:
    """The dashboard provider's path is the mount of deploy/grafana/dashboards; the home dashboard exists."""
    provider = artifacts.load_yaml(artifacts.GRAFANA / "provisioning/dashboards/liq.yml")["providers"][0]
    mounts = dict(str(v).rsplit(":", 1)[0].split(":", 1) for v in GRAFANA["volumes"] if str(v).startswith("."))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = GRAFANA["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert home.rsplit("/", 1)[1] in DASHBOARDS


def _texts(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(panel, all its query text) for every panel with queries."""
    return [
        (p, " ".join(str(t.get("rawSql") or t.get("expr") or "") for t in p.get("targets", [])))
        for p in artifacts.panels(dashboard)
        if p.get("targets")
    ]


def _has(dashboard: dict[str, Any], panel_type: str | None, *needles: str) -> bool:
    return any(
        (panel_type is None or panel["type"] == panel_type) and all(re.search(n, text) for n in needles)
        for panel, text in _texts(dashboard)
    )


def test_liquidations_dashboard_has_the_requested_panels() -> None:
    """USD over time by exchange and by side, long/short ratio, top assets, largest liquidations,
    cascade timeline and table with tiers, and a price x time heatmap, all from the database."""
    d = DASHBOARDS["liquidations.json"]
    assert _has(d, "timeseries", r"liquidations_1m", r"exchange AS metric", r"sum\(usd\)")
    assert _has(d, "timeseries", r"liquidations_1m", r"side", r"AS metric")
    assert _has(d, "timeseries", r"side = 'long'\) / nullif\(")
    assert _has(d, "table", r"GROUP BY base", r"ORDER BY sum\(usd\) DESC")
    assert _has(d, "table", r"FROM liquidations\b", r"ORDER BY notional_usd DESC")
    assert _has(d, "timeseries", r"FROM cascades", r"tier AS metric")
    assert _has(d, "table", r"FROM cascades", r"tier AS \"Tier\"")
    assert _has(d, "heatmap", r"FROM liquidations\b", r"price", r"timeGroupAlias")
    assert any(a.get("target", {}).get("rawSql", "").count("FROM cascades") for a in d["annotations"]["list"])


def test_pipeline_health_dashboard_has_the_requested_panels() -> None:
    """Events/s per exchange, connection state, reconnects, rejects, stream length and lag, pending,
    batch latency, alert deliveries and failures."""
    d = DASHBOARDS["pipeline-health.json"]
    assert _has(d, "timeseries", r"sum by \(exchange\) \(rate\(liq_events_published_total")
    assert _has(d, "state-timeline", r"liq_ws_connected")
    assert _has(d, None, r"liq_ws_reconnects_total")
    assert _has(d, None, r"liq_frames_rejected_total")
    assert _has(d, None, r"liq_stream_length")
    assert _has(d, None, r"liq_consumer_lag_entries")
    assert _has(d, None, r"liq_consumer_pending_entries")
    assert _has(d, None, r"histogram_quantile\(0\.99, .*_batch_seconds_bucket")
    assert _has(d, None, r"liq_alerter_messages_total")
    assert _has(d, None, r"liq_alerter_requests_total\{outcome!=\"ok\"\}")


def test_pipeline_health_dashboard_has_a_feed_health_row() -> None:
    """A "Feed health" row holding: connected state per feed, last data and last liquidation age, silent
    detections, and the gaps of the last 24 h with a per-feed summary from PostgreSQL."""
    d = DASHBOARDS["pipeline-health.json"]
    panels = list(artifacts.panels(d))
    rows = sorted((p["gridPos"]["y"], p["title"]) for p in panels if p["type"] == "row")
    start = next(y for y, title in rows if title == "Feed health")
    end = min((y for y, _ in rows if y > start), default=10**6)
    inside = {"panels": [p for p in panels if start < p["gridPos"]["y"] < end]}
    assert _has(inside, "state-timeline", r"sum by \(exchange, market\) \(liq_ws_connected")
    assert _has(inside, None, r"time\(\) - max by \(exchange, market\) \(liq_feed_last_data_timestamp_seconds")
    assert _has(inside, None, r"time\(\) - max by \(exchange, market\) \(liq_last_event_timestamp_seconds")
    assert _has(inside, None, r"liq_feed_silent_total.* offset \$__range")
    assert _has(inside, "table", r"FROM feed_gaps", r"interval '24 hours'", r"ORDER BY start_ts DESC")
    assert _has(inside, "table", r"FROM feed_gaps", r"count\(\*\) FILTER \(WHERE end_ts IS NULL\)")
    sql = [p for p in inside["panels"] if p.get("datasource", {}).get("uid") == "liq-postgres"]
    assert len(sql) == 2
