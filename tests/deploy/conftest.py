"""Fixtures of the deploy tests: the services Prometheus scrapes and the metrics they export."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy import artifacts
from tests.deploy.exported import exported_by


def scraped_jobs() -> dict[str, str]:
    """Prometheus job name -> ``host:port`` target, from deploy/prometheus/prometheus.yml."""
    config = artifacts.load_yaml(artifacts.PROMETHEUS / "prometheus.yml")
    jobs: dict[str, str] = {}
    for job in config["scrape_configs"]:
        targets = [t for static in job.get("static_configs", []) for t in static["targets"]]
        assert len(targets) == 1, f"job {job['job_name']}: one target per job, got {targets}"
        jobs[job["job_name"]] = targets[0]
    return jobs


@pytest.fixture(scope="session")
def services() -> list[artifacts.ServicePackage]:
    """The workspace services (directories under services/ with a liq-<name> console script)."""
    return artifacts.service_packages()


@pytest.fixture(scope="session")
def exported(services: list[artifacts.ServicePackage]) -> dict[str, set[str]]:
    """Sample name -> label names, over every service Prometheus scrapes (job ``liq-<directory>``)."""
    by_job = {f"liq-{s.directory}": s.package for s in services}
    packages = [by_job[job] for job in scraped_jobs() if job in by_job]
    assert packages, "prometheus.yml scrapes no liq service"
    merged: dict[str, set[str]] = {}
    for names in exported_by(packages).values():
        for name, labels in names.items():
            merged.setdefault(name, set()).update(labels)
    return merged


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian package ``prometheus``; .ci/run installs it)."""
    path = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    assert path is not None, "promtool not found: apt-get install prometheus (.ci/run does)"
    return path
