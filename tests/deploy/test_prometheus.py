"""Prometheus: the configuration and rules load (`promtool check config`), every alert rule passes its
unit tests (`promtool test rules`) and has one, and the scrape targets are the compose services'
metrics endpoints."""

from __future__ import annotations

import subprocess

from tests.deploy import artifacts
from tests.deploy.conftest import scraped_jobs

CONFIG = artifacts.PROMETHEUS / "prometheus.yml"
RULE_TESTS = sorted((artifacts.PROMETHEUS / "tests").glob("*.yml"))


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_config(promtool: str) -> None:
    """The configuration and every rule file it includes are valid (rule files are parsed too)."""
    result = _run(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    assert "rules found" in result.stdout + result.stderr, "the config loads no rule file"


def test_promtool_test_rules(promtool: str) -> None:
    """The alert rules' unit tests pass."""
    assert RULE_TESTS, "no rule unit tests in deploy/prometheus/tests"
    result = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    """Each alert of the rule files is expected to fire somewhere in the unit tests."""
    alerts = {
        rule["alert"]
        for path in (artifacts.PROMETHEUS / "rules").glob("*.yml")
        for group in artifacts.load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired = {
        check["alertname"]
        for path in RULE_TESTS
        for test in artifacts.load_yaml(path)["tests"]
        for check in test.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert alerts, "no alert rules"
    assert alerts <= fired, f"alerts never seen firing in a unit test: {sorted(alerts - fired)}"


def test_issue_alerts_are_covered() -> None:
    """The failure modes the deployment must alert on each have a rule on the right metric."""
    exprs = " ".join(
        str(rule["expr"])
        for path in (artifacts.PROMETHEUS / "rules").glob("*.yml")
        for group in artifacts.load_yaml(path)["groups"]
        for rule in group["rules"]
    )
    for needle in (
        'up{job=~"liq-',  # an ingestor (any service) down
        "liq_ws_connected",  # disconnected
        "liq_events_published_total",  # no liquidations for an unusually long time
        "liq_consumer_lag_entries",  # lag growing
        "liq_consumer_pending_entries",  # pending growing
        "liq_dead_letters_total",  # dead letters appearing
        "liq_persister_db_up",  # persister failing to write
        "liq_persister_rows_written_total",
        "liq_alerter_requests_total",  # alert deliveries failing
        "liq_feed_silent_total",  # a feed found silent, once or repeatedly (issue 12)
        "liq_feed_last_data_timestamp_seconds",  # no data frame on a feed with a control signal
    ):
        assert needle in exprs, f"no rule uses {needle}"


def test_scrape_targets_are_the_compose_services_metrics_ports(services: list[artifacts.ServicePackage]) -> None:
    """Every liq service in compose except the demo simulator is scraped as job liq-<service> at
    <service>:<its METRICS_PORT>; nothing else but Prometheus itself is scraped."""
    compose = artifacts.compose()["services"]
    jobs = scraped_jobs()
    expected = {}
    for service in services:
        spec = compose[service.directory]
        if "demo" in spec.get("profiles", []):
            continue
        expected[f"liq-{service.directory}"] = f"{service.directory}:{spec['environment']['METRICS_PORT']}"
    liq_jobs = {job: target for job, target in jobs.items() if job != "prometheus"}
    assert liq_jobs == expected
    assert jobs["prometheus"] == "127.0.0.1:9090"


def test_compose_runs_prometheus_with_this_config_and_rules() -> None:
    """The container reads this file at the path its `--config.file` names, with rules/ beside it."""
    prometheus = artifacts.compose()["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    config = artifacts.load_yaml(CONFIG)
    assert config["rule_files"] == ["rules/*.yml"]
