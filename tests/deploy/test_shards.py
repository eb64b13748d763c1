"""deploy/docker-compose.shards.yml, the override that runs the detector as shards, and the Prometheus job
that scrapes them (there is no Docker engine here: the merge compose would do is done by hand).

Checked against the detector itself: the shard settings load with liq_detector.settings.Settings, each
shard gets its own consumer group, and every shard is scraped on the detector's METRICS_PORT.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from liq_common.settings import SettingsError, load_settings
from liq_detector.settings import Settings
from tests.deploy import artifacts

SHARDS = artifacts.DEPLOY / "docker-compose.shards.yml"
BASE = artifacts.compose()["services"]["detector"]


def _override() -> dict[str, Any]:
    data: dict[str, Any] = artifacts.load_yaml(SHARDS)
    return data


def detector_services(override: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The override's detector services: ``detector`` itself and those that extend it."""
    return {
        name: spec
        for name, spec in override["services"].items()
        if name == "detector" or (spec.get("extends") or {}).get("service") == "detector"
    }


def shard_problems(override: dict[str, Any]) -> list[str]:
    """What is wrong with the shard layout: SHARD_COUNT is the number of detector services, the
    SHARD_INDEX values are exactly 0..N-1, and every shard has its own CONSUMER."""
    shards = detector_services(override)
    problems = [f"{name}: not a detector service" for name in override["services"] if name not in shards]
    if "detector" not in shards:
        problems.append("the stack's detector is not one of the shards")
    envs = {name: spec.get("environment", {}) for name, spec in shards.items()}
    for name, env in envs.items():
        if str(env.get("SHARD_COUNT")) != str(len(shards)):
            problems.append(f"{name}: SHARD_COUNT {env.get('SHARD_COUNT')!r}, but there are {len(shards)} shards")
    indexes = sorted(str(env.get("SHARD_INDEX")) for env in envs.values())
    if indexes != [str(i) for i in range(len(shards))]:
        problems.append(f"SHARD_INDEX values {indexes} are not 0..{len(shards) - 1}")
    consumers = [env.get("CONSUMER") for env in envs.values()]
    if None in consumers or len(set(consumers)) != len(consumers):
        problems.append(f"CONSUMER names {consumers} are not set and distinct")
    return problems


def test_shards_cover_every_index_once_with_their_own_consumer() -> None:
    """Every service of the override is a detector shard; SHARD_COUNT is their number, SHARD_INDEX runs
    over 0..N-1 once each, and CONSUMER names differ (and the check catches a duplicated index)."""
    override = _override()
    assert len(detector_services(override)) >= 2
    assert shard_problems(override) == []
    broken = copy.deepcopy(override)
    envs = [spec["environment"] for spec in detector_services(broken).values()]
    envs[1]["SHARD_INDEX"] = envs[0]["SHARD_INDEX"]
    assert any("SHARD_INDEX" in problem for problem in shard_problems(broken))
    envs[1]["CONSUMER"] = envs[0]["CONSUMER"]
    assert any("CONSUMER" in problem for problem in shard_problems(broken))


def merged_environment(spec: dict[str, Any]) -> dict[str, Any]:
    """A shard's environment as compose merges it: the base file's detector overlaid with the override
    (both for the overridden ``detector`` and, through ``extends``, for the other shards)."""
    return {**BASE["environment"], **spec.get("environment", {})}


def test_shard_environments_load_with_the_detector_settings(tmp_path: Path) -> None:
    """With .env.example, each shard's merged environment loads as liq_detector Settings with its shard,
    its own group detector.<index>of<count> and /metrics reachable; only detector settings are named (and an
    index outside the count does not load)."""
    dotenv = artifacts.read_env_file(artifacts.ENV_EXAMPLE)
    allowed = set(artifacts.setting_names(Settings))
    allowed |= {f"{name}_FILE" for name in allowed}
    shards = detector_services(_override())
    groups = set()
    for name, spec in shards.items():
        env = artifacts.render_environment(merged_environment(spec), dotenv, tmp_path)
        assert set(env) <= allowed, f"{name}: {sorted(set(env) - allowed)} are not detector settings"
        try:
            settings = load_settings(Settings, env)
        except SettingsError as exc:
            pytest.fail(f"{name}: {exc}")
        assert settings.shard_count == len(shards), name
        assert settings.consumer_group == f"{settings.group}.{settings.shard_index}of{settings.shard_count}", name
        assert settings.metrics_host == "0.0.0.0", f"{name}: /metrics unreachable from Prometheus"
        groups.add(settings.consumer_group)
    assert groups == {f"detector.{i}of{len(shards)}" for i in range(len(shards))}
    env = artifacts.render_environment(merged_environment(shards["detector"]), dotenv, tmp_path)
    with pytest.raises(SettingsError, match="SHARD_INDEX"):
        load_settings(Settings, {**env, "SHARD_INDEX": env["SHARD_COUNT"]})


def test_other_shards_extend_the_stacks_detector() -> None:
    """Every shard but ``detector`` extends service ``detector`` of docker-compose.yml (so it keeps its
    image, build, secrets, env_file, health check and grace period), sets only its environment, and
    repeats the base dependencies, which older Compose releases do not carry over through extends."""
    shards = detector_services(_override())
    others = {name: spec for name, spec in shards.items() if name != "detector"}
    assert "detector-1" in others
    for name, spec in others.items():
        extends = spec["extends"]
        assert extends == {"file": "docker-compose.yml", "service": "detector"}, name
        assert (SHARDS.parent / extends["file"]).resolve() == artifacts.COMPOSE
        assert set(spec) <= {"extends", "environment", "depends_on"}, f"{name} overrides {sorted(spec)}"
        assert spec.get("depends_on") == BASE["depends_on"], f"{name}: repeat the base depends_on"
    assert set(shards["detector"]) == {"environment"}, "the override changes only the detector's environment"


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str]:
    """Prometheus relabelling (the ``replace`` action only) of a discovered target, then ``instance``
    defaulting to ``__address__`` as Prometheus does."""
    out = dict(labels)
    for config in configs:
        assert config.get("action", "replace") == "replace", "only replace is emulated here"
        value = config.get("separator", ";").join(out.get(name, "") for name in config.get("source_labels", []))
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if match is None:
            continue
        replacement = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", config.get("replacement", "$1"))
        out[config["target_label"]] = match.expand(replacement)
    out.setdefault("instance", out["__address__"])
    return out


def test_prometheus_scrapes_every_shard_by_name() -> None:
    """Job liq-detector scrapes each shard on the detector's METRICS_PORT: the stack's detector as a
    static target (down shows as up == 0), the override's other shards through DNS, which has no name
    and so no down target when they do not run; ``instance`` is ``<service>:<port>``, not an IP."""
    config = artifacts.load_yaml(artifacts.PROMETHEUS / "prometheus.yml")
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "liq-detector"]
    assert len(jobs) == 1
    job = jobs[0]
    port = int(BASE["environment"]["METRICS_PORT"])
    static = {target for group in job.get("static_configs", []) for target in group["targets"]}
    looked_up = {
        (name, sd["port"])
        for sd in job.get("dns_sd_configs", [])
        if sd.get("type", "SRV") == "A"
        for name in sd["names"]
    }
    shards = set(detector_services(_override()))
    assert static == {f"detector:{port}"}, "only the default stack's detector may be a static target"
    assert {name for name, _ in looked_up} == shards - {"detector"}
    assert {p for _, p in looked_up} == {port}
    configs = job.get("relabel_configs", [])
    assert relabel({"__address__": f"detector:{port}"}, configs)["instance"] == f"detector:{port}"
    for name, _ in looked_up:
        found = {"__address__": f"172.18.0.7:{port}", "__meta_dns_name": name}
        assert relabel(found, configs)["instance"] == f"{name}:{port}"
