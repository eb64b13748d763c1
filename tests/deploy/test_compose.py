"""Structural checks of deploy/docker-compose.yml (there is no Docker engine to run it here).

Checked against the workspace itself: environment variables against each service's settings Struct,
build arguments against services/, health ports against METRICS_PORT, grace periods against the
drain timeout of liq_common.runtime, secrets against their declarations and .env.example.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from liq_alerter.destinations import parse_destinations
from liq_common.settings import Secret, SettingsError, load_settings
from tests.deploy import artifacts

COMPOSE = artifacts.compose()
SPECS: dict[str, dict[str, Any]] = COMPOSE["services"]
SECRET_DIR = artifacts.SECRET_DIR


def _liq(services: list[artifacts.ServicePackage]) -> list[tuple[artifacts.ServicePackage, dict[str, Any]]]:
    return [(s, SPECS[s.directory]) for s in services]


def test_every_workspace_service_is_in_compose(services: list[artifacts.ServicePackage]) -> None:
    """The five services and the simulator each have a compose service named like their directory;
    only the simulator is limited to the demo profile."""
    assert {"ingest-binance", "ingest-bybit", "detector", "persister", "alerter"} <= {s.directory for s in services}
    for service in services:
        assert service.directory in SPECS, f"{service.directory} missing from docker-compose.yml"
        profiles = SPECS[service.directory].get("profiles", [])
        assert profiles == (["demo"] if service.directory == "exchange-sim" else []), service.directory


def test_environment_names_only_real_settings(services: list[artifacts.ServicePackage]) -> None:
    """Each variable in a service's environment is a field of its settings Struct (upper-cased) or
    that name plus _FILE: a typo would be silently ignored by the service."""
    for service, spec in _liq(services):
        unknown = unknown_settings(service, list(spec.get("environment", {})))
        assert not unknown, f"{service.directory}: {unknown} are not settings of {service.settings.__qualname__}"


def unknown_settings(service: artifacts.ServicePackage, names: list[str]) -> list[str]:
    """The names that are neither a setting of ``service`` nor such a setting plus _FILE."""
    allowed = set(artifacts.setting_names(service.settings))
    allowed |= {f"{name}_FILE" for name in allowed}
    return sorted(set(names) - allowed)


def test_per_service_env_files_are_optional_and_hold_only_settings(
    services: list[artifacts.ServicePackage], tmp_path: Path
) -> None:
    """Each of the five services reads the optional deploy/env/<service>.env; any such file present
    names only settings of its service (and the check itself catches a wrong name)."""
    for service, spec in _liq(services):
        if "demo" in spec.get("profiles", []):
            continue
        assert spec["env_file"] == [{"path": f"./env/{service.directory}.env", "required": False}]
        local = artifacts.DEPLOY / "env" / f"{service.directory}.env"
        if local.exists():
            assert not unknown_settings(service, artifacts.env_file_keys(local)), local
    detector = next(s for s in services if s.directory == "detector")
    sample = tmp_path / "detector.env"
    sample.write_text("FLOOR_USD=100000\n# comment\nFLOOR_USDT=1\nASSET_OVERRIDES_FILE=/x\n")
    assert unknown_settings(detector, artifacts.env_file_keys(sample)) == ["FLOOR_USDT"]


def test_environment_values_load_with_the_example_configuration(
    services: list[artifacts.ServicePackage], tmp_path: Path
) -> None:
    """With .env.example, each service's settings load from its compose environment (types,
    constraints, secret files): the stack would not exit 2 on start."""
    dotenv = artifacts.read_env_file(artifacts.ENV_EXAMPLE)
    for service, spec in _liq(services):
        env = artifacts.render_environment(spec.get("environment", {}), dotenv, tmp_path)
        try:
            settings = load_settings(service.settings, env)
        except SettingsError as exc:
            pytest.fail(f"{service.directory}: {exc}")
        assert settings.metrics_host == "0.0.0.0", f"{service.directory}: /metrics unreachable from Prometheus"


def test_defaults_in_compose_match_env_example_and_settings(services: list[artifacts.ServicePackage]) -> None:
    """A ${VAR:-default} in compose has the same default in .env.example, and for exchange URLs the
    same value as the service's own default (the real exchange)."""
    documented = artifacts.read_env_file(artifacts.ENV_EXAMPLE)
    fields = {name: f for s in services for name, f in artifacts.setting_names(s.settings).items()}
    for var, default in artifacts.interpolations(artifacts.COMPOSE.read_text()):
        if default is None:
            continue
        assert documented.get(var) == default, f"${{{var}:-{default}}} but .env.example has {documented.get(var)!r}"
        field = fields.get(var)
        if field is not None and var.endswith("_URL") and not var.startswith("LIQ_"):
            assert field.default == default, f"{var}: compose default {default!r} != settings {field.default!r}"


def test_every_variable_is_documented_in_env_example() -> None:
    """.env.example defines every variable compose interpolates or reads a secret from, and nothing else."""
    used = {var for var, _ in artifacts.interpolations(artifacts.COMPOSE.read_text())}
    used |= {s["environment"] for s in COMPOSE["secrets"].values() if "environment" in s}
    documented = set(artifacts.env_file_keys(artifacts.ENV_EXAMPLE))
    assert used - documented == set(), f"undocumented: {sorted(used - documented)}"
    assert documented - used == set(), f"documented but unused: {sorted(documented - used)}"


def test_secrets_are_declared_granted_and_read_through_file_variables() -> None:
    """Secrets a service lists are declared; each *_FILE under /run/secrets names a secret granted to
    that service; every declared secret is used and has a source."""
    declared = COMPOSE["secrets"]
    used: set[str] = set()
    for name, spec in SPECS.items():
        granted = set(spec.get("secrets", []))
        assert granted <= set(declared), f"{name}: undeclared secrets {sorted(granted - set(declared))}"
        used |= granted
        for var, value in spec.get("environment", {}).items():
            if str(value).startswith(SECRET_DIR):
                assert var.endswith("_FILE") or var.endswith("__FILE"), f"{name}: {var} points at a secret"
                assert str(value).removeprefix(SECRET_DIR) in granted, f"{name}: {var} needs secret {value}"
        for word in re.findall(r"/run/secrets/(\w+)", str(spec.get("command", "")) + str(spec.get("healthcheck", ""))):
            assert word in granted, f"{name}: command or healthcheck reads secret {word} it is not granted"
    assert used == set(declared), f"declared but unused secrets: {sorted(set(declared) - used)}"
    for name, source in declared.items():
        assert "environment" in source or (artifacts.DEPLOY / source["file"]).is_file(), f"secret {name}: no source"


def test_secret_urls_point_at_the_compose_servers() -> None:
    """With .env.example, the Redis and database URLs reach the compose services with the passwords
    of the same file, and the roles that services/persister/sql/roles.sql creates."""
    env = artifacts.read_env_file(artifacts.ENV_EXAMPLE)
    redis = urlsplit(env["LIQ_REDIS_URL"])
    assert (redis.hostname, redis.port, redis.password) == ("redis", 6379, env["REDIS_PASSWORD"])
    roles_sql = (artifacts.ROOT / "services/persister/sql/roles.sql").read_text()
    for var, user, password_var in (
        ("LIQ_DATABASE_URL", "liq_persister", "LIQ_PERSISTER_PASSWORD"),
        ("LIQ_MIGRATE_DATABASE_URL", "liq_owner", "LIQ_OWNER_PASSWORD"),
    ):
        url = urlsplit(env[var])
        assert (url.hostname, url.port, url.path) == ("timescaledb", 5432, "/liq"), var
        assert (url.username, url.password) == (user, env[password_var]), var
        assert f"CREATE ROLE {user} LOGIN" in roles_sql
    assert "CREATE ROLE liq_dashboard LOGIN" in roles_sql
    assert "CREATE DATABASE liq " in roles_sql


def test_alert_destination_examples_parse(tmp_path: Path) -> None:
    """The default LIQ_ALERT_DESTINATIONS and the Discord/Telegram examples in .env.example and
    deploy/README.md are valid alerter configuration."""
    env = artifacts.read_env_file(artifacts.ENV_EXAMPLE)
    assert [d.kind for d in parse_destinations(Secret(env["LIQ_ALERT_DESTINATIONS"]))] == ["console"]
    examples = re.findall(r"^#\s+(Discord|Telegram):\s+(\[.*\])$", artifacts.ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert {kind for kind, _ in examples} == {"Discord", "Telegram"}
    for kind, text in examples:
        assert [d.kind for d in parse_destinations(Secret(_fill(text)))] == [kind.lower()]
    readme = re.findall(r"^LIQ_ALERT_DESTINATIONS='(.*)'$", (artifacts.DEPLOY / "README.md").read_text(), re.MULTILINE)
    assert len(readme) == 1
    assert [d.kind for d in parse_destinations(Secret(_fill(readme[0])))] == ["discord", "telegram"]


def _fill(example: str) -> str:
    """An example with its placeholders replaced by well-formed values."""
    filled = example.replace("<id>", "123456789").replace("<token>", "abcDEF_123-xyz")
    return filled.replace("<bot id>:<secret>", "123456:ABC-def_ghi")


def test_builds_resolve(services: list[artifacts.ServicePackage]) -> None:
    """Every build has the repository root as context (the uv workspace with uv.lock), the Dockerfile
    exists relative to it, and SERVICE names a services/ directory with the liq-<SERVICE> script."""
    for service, spec in _liq(services):
        build = spec["build"]
        context = (artifacts.DEPLOY / build["context"]).resolve()
        assert context == artifacts.ROOT
        assert (context / "uv.lock").is_file()
        assert (context / build["dockerfile"]).resolve() == artifacts.DOCKERFILE
        name = build["args"]["SERVICE"]
        assert name == service.directory
        scripts = tomllib.loads((context / "services" / name / "pyproject.toml").read_text())["project"]["scripts"]
        assert f"liq-{name}" in scripts
        assert spec["image"].startswith(f"liq/{name}:")
    images = [spec["image"] for spec in SPECS.values() if "image" in spec]
    assert len(images) == len(set(images))
    assert SPECS["timescaledb"]["image"].startswith("timescale/timescaledb:")


def test_bind_mounts_exist() -> None:
    """Every relative bind mount source is a file or directory of the repository."""
    for name, spec in SPECS.items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (artifacts.DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in COMPOSE["volumes"], f"{name}: named volume {source} is not declared"


def test_depends_on_waits_for_healthy_services() -> None:
    """Every dependency exists, and service_healthy is only used on services with a health check."""
    for name, spec in SPECS.items():
        depends = spec.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long depends_on form with conditions"
        for target, rule in depends.items():
            assert target in SPECS, f"{name} depends on unknown {target}"
            assert rule["condition"] in ("service_healthy", "service_started", "service_completed_successfully")
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SPECS[target], f"{name} waits for {target}'s health but it has none"
            if "profiles" in SPECS[target]:
                assert rule.get("required") is False, f"{name} would fail without profile {SPECS[target]['profiles']}"
    assert set(SPECS["persister"]["depends_on"]) == {"redis", "timescaledb"}


def test_liq_services_stop_gracefully_and_report_health(services: list[artifacts.ServicePackage]) -> None:
    """Grace period longer than the drain timeout (else SIGKILL cuts the flush), a restart policy, and
    the health probe on the service's own METRICS_PORT."""
    probe = artifacts.DEPLOY / "docker" / "healthcheck.py"
    for service, spec in _liq(services):
        drain = artifacts.drain_timeout(service)
        grace = artifacts.duration_seconds(spec["stop_grace_period"])
        assert grace > drain, f"{service.directory}: stop_grace_period {grace}s <= drain {drain}s"
        assert spec.get("stop_signal", "SIGTERM") == "SIGTERM"
        assert spec["restart"] in ("unless-stopped", "always", "on-failure")
        assert spec["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]
        assert spec["environment"]["METRICS_PORT"].isdigit()
        assert probe.is_file()
    for name in ("redis", "timescaledb", "prometheus", "grafana"):
        assert "healthcheck" in SPECS[name], name
        assert SPECS[name]["restart"] == "unless-stopped", name


def test_redis_persists_and_requires_a_password() -> None:
    """Append-only persistence on, requirepass from the secret, the health check authenticates."""
    command = " ".join(SPECS["redis"]["command"])
    assert "--appendonly yes" in command
    assert '--requirepass "$$(cat /run/secrets/redis_password)"' in command
    assert "redis-data:/data" in SPECS["redis"]["volumes"]
    assert "REDISCLI_AUTH" in " ".join(SPECS["redis"]["healthcheck"]["test"])


def test_demo_env_points_the_ingestors_at_the_simulator(services: list[artifacts.ServicePackage]) -> None:
    """demo.env only overrides variables compose uses, and every URL in it goes to the exchange-sim
    service on one of its three listener ports."""
    used = {var for var, _ in artifacts.interpolations(artifacts.COMPOSE.read_text())}
    demo = artifacts.read_env_file(artifacts.DEMO_ENV)
    assert demo
    assert set(demo) <= used
    sim = next(s for s in services if s.directory == "exchange-sim")
    env = SPECS["exchange-sim"]["environment"]
    assert set(env) <= set(artifacts.setting_names(sim.settings))
    port = int(env["SIM_PORT"])
    for var, value in demo.items():
        url = urlsplit(value)
        assert url.hostname == "exchange-sim", var
        assert url.port in (port, port + 1, port + 2), var
    assert env["SIM_HOST"] == "0.0.0.0"


def test_database_init_script_feeds_roles_sql_what_it_needs() -> None:
    """The first-start script is valid sh, passes every psql variable services/persister/sql/roles.sql
    uses, reads only secrets granted to the timescaledb service, and is mounted where the image runs it."""
    script = artifacts.DEPLOY / "postgres/initdb/10-liq-roles.sh"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    roles_sql = (artifacts.ROOT / "services/persister/sql/roles.sql").read_text()
    needed = set(re.findall(r":'(\w+)'", roles_sql))
    assert needed, "roles.sql takes no psql variables?"
    passed = set(re.findall(r"-v (\w+)=", text))
    assert needed <= passed, f"roles.sql needs {sorted(needed - passed)}"
    spec = SPECS["timescaledb"]
    read = set(re.findall(r"\$\(secret (\w+)\)", text))
    assert len(read) == len(needed), "one password secret per psql variable of roles.sql"
    assert read <= set(spec["secrets"])
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in spec["volumes"]}
    assert mounts["./postgres/initdb/10-liq-roles.sh"].startswith("/docker-entrypoint-initdb.d/")
    assert mounts["../services/persister/sql/roles.sql"] == "/liq/roles.sql"
    assert "-f /liq/roles.sql" in text
    assert spec["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
