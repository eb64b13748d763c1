"""deploy/Dockerfile without Docker: its structure, and its `uv sync` steps run for real (``--dry-run``)
on the files the build context would hold at that step."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy import artifacts

DEV_TOOLS = {"pytest", "mypy", "ruff", "hypothesis", "testcontainers"}


@dataclass
class Stage:
    """One FROM stage: its name and instructions (keyword, argument text)."""

    name: str
    base: str
    steps: list[tuple[str, str]] = field(default_factory=list)


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile (continuations joined, comments dropped)."""
    logical: list[str] = []
    buffer = ""
    for line in text.splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buffer and line.lstrip().startswith("#"):
            continue
        buffer += line.rstrip()
        if buffer.endswith("\\"):
            buffer = buffer[:-1] + " "
            continue
        logical.append(buffer.strip())
        buffer = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in logical:
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            stages.append(Stage(name.strip(), base.strip()))
        elif stages:
            stages[-1].steps.append((keyword, rest.strip()))
        elif keyword == "ARG":
            key, _, default = rest.partition("=")
            args[key] = default
    return args, stages


ARGS, STAGES = parse(artifacts.DOCKERFILE.read_text())
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def _uv_syncs(stage: Stage) -> list[tuple[int, list[str]]]:
    """(index of the step, argv) of every `uv sync` in a stage's RUN steps."""
    found = []
    for index, (keyword, rest) in enumerate(stage.steps):
        if keyword != "RUN":
            continue
        command = re.sub(r"--mount=\S+", "", rest)
        for part in command.split("&&"):
            argv = shlex.split(part)
            if argv[:2] == ["uv", "sync"]:
                found.append((index, argv))
    return found


def _copied_before(stage: Stage, index: int) -> list[str]:
    """Sources of the COPY steps (from the build context) before step ``index``."""
    sources = []
    for keyword, rest in stage.steps[:index]:
        if keyword == "COPY" and "--from=" not in rest:
            sources.extend(shlex.split(rest)[:-1])
    return sources


def _workspace_members() -> list[Path]:
    root = tomllib.loads((artifacts.ROOT / "pyproject.toml").read_text())
    members = root["tool"]["uv"]["workspace"]["members"]
    return sorted(p.parent for pattern in members for p in artifacts.ROOT.glob(f"{pattern}/pyproject.toml"))


def test_multi_stage_non_root_exec_entrypoint() -> None:
    """Two stages; the runtime one copies only the built /app from the build stage (no uv, no
    sources), runs as an unprivileged user and starts the service in exec form."""
    assert len(STAGES) >= 2
    assert BUILD.name == "build"
    assert RUNTIME.name == "runtime"
    runtime_text = " ".join(rest for _, rest in RUNTIME.steps)
    assert "uv" not in re.findall(r"\b(uv)\b", runtime_text.replace("/app/.venv", ""))
    copies = [rest for keyword, rest in RUNTIME.steps if keyword == "COPY"]
    assert "--from=build /app /app" in copies
    assert all("--from=build" in c or c.startswith("deploy/docker/") for c in copies), copies
    users = [rest for keyword, rest in RUNTIME.steps if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    entrypoint = [rest for keyword, rest in RUNTIME.steps if keyword == "ENTRYPOINT"]
    assert entrypoint, "no ENTRYPOINT"
    assert entrypoint[-1].startswith("["), "ENTRYPOINT must be exec form to receive SIGTERM"
    assert any(k == "ENV" and "METRICS_HOST=0.0.0.0" in r for k, r in RUNTIME.steps)


def test_uv_comes_from_pypi_pinned() -> None:
    """uv is pip-installed from PyPI at a pinned version in the build stage."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", ARGS.get("UV_VERSION", "") or _stage_arg(BUILD, "UV_VERSION"))
    assert any(k == "RUN" and 'pip install "uv==${UV_VERSION}"' in r for k, r in BUILD.steps)


def _stage_arg(stage: Stage, name: str) -> str:
    for keyword, rest in stage.steps:
        if keyword == "ARG" and rest.startswith(f"{name}="):
            return rest.split("=", 1)[1]
    return ""


def test_every_workspace_member_manifest_is_copied_before_the_dependency_layer() -> None:
    """`uv sync --locked` needs every member's pyproject.toml to check uv.lock; the list in the
    Dockerfile must follow the workspace."""
    first_sync = _uv_syncs(BUILD)[0][0]
    copied = set(_copied_before(BUILD, first_sync))
    expected = {"pyproject.toml", "uv.lock"} | {
        str((m / "pyproject.toml").relative_to(artifacts.ROOT)) for m in _workspace_members()
    }
    assert expected <= copied, f"not copied before the first uv sync: {sorted(expected - copied)}"


def test_dockerignore_lets_every_copied_path_through() -> None:
    """The build context filter (Dockerfile.dockerignore) keeps each path the Dockerfile copies."""
    ignore = (artifacts.DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for stage in STAGES:
        for source in _copied_before(stage, len(stage.steps)):
            assert any(source == k or source.startswith(k + "/") for k in kept), f"{source} is ignored"


def _dry_run(argv: list[str], service: str, cwd: Path, venv: Path) -> str:
    argv = [a.replace("${SERVICE}", service) for a in argv]
    uv = shutil.which("uv")
    assert uv is not None
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [uv, *argv[1:], "--dry-run"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{' '.join(argv)} failed for {service}:\n{result.stderr}"
    return result.stderr + result.stdout


def _installed(output: str) -> set[str]:
    return {m for m in re.findall(r"^ \+ ([A-Za-z0-9_.-]+)", output, re.MULTILINE)}


@pytest.mark.parametrize("service", ["persister", "ingest-bybit"])
def test_uv_sync_steps_work_on_what_the_build_context_holds(service: str, tmp_path: Path) -> None:
    """The dependency step, run on only the files copied before it, passes `--locked` and installs no
    workspace package; the final step installs liq-common and the service, never the dev tools."""
    (deps_step, deps_argv), (full_step, full_argv) = _uv_syncs(BUILD)[:2]
    deps_context, full_context = _context(deps_step, tmp_path / "deps"), _context(full_step, tmp_path / "full")
    deps = _installed(_dry_run(deps_argv, service, deps_context, tmp_path / "venv1"))
    assert deps, "the dependency layer installs nothing"
    assert not {p for p in deps if p.startswith("liq-")}, deps
    assert not deps & DEV_TOOLS
    full = _installed(_dry_run(full_argv, service, full_context, tmp_path / "venv2"))
    assert {"liq-common", f"liq-{service}"} <= full
    assert not full & DEV_TOOLS
    assert "--no-editable" in full_argv
    assert "--locked" in full_argv
    assert "--locked" in deps_argv


def _context(step: int, where: Path) -> Path:
    """A copy of what the build stage holds before ``step``: the paths its COPY steps copied."""
    for source in _copied_before(BUILD, step):
        origin, target = artifacts.ROOT / source, where / source
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, target)
    return where


def _image_members() -> list[Path]:
    """Workspace members an image can contain: liq-common and the services (not the CLI)."""
    return [m for m in _workspace_members() if m.parent.name in ("libs", "services") and (m / "src").is_dir()]


def test_non_editable_installs_carry_every_package_file(tmp_path: Path) -> None:
    """The image installs the workspace packages as wheels (`--no-editable`) and drops the sources, so
    every file of each package (SQL migrations, scenario data, py.typed) must be inside its wheel."""
    uv = shutil.which("uv")
    assert uv is not None
    result = subprocess.run(  # one command builds them all, much faster than one build per package
        [uv, "build", "--all-packages", "--wheel", "--out-dir", str(tmp_path)],
        cwd=artifacts.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    members = _image_members()
    assert {m.name for m in members} >= {"common", "persister", "alerter"}
    for member in members:
        name = tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"]
        (wheel,) = tmp_path.glob(f"{name.replace('-', '_')}-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            inside = set(archive.namelist())
        expected = {
            str(path.relative_to(member / "src"))
            for path in (member / "src").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        }
        assert expected, f"{member.name}: no files under src/"
        assert expected <= inside, f"{member.name}: missing from the wheel: {sorted(expected - inside)}"
