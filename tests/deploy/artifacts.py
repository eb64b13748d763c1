"""The files under ``deploy/``, loaded for the tests: compose, env files, dashboards, Prometheus.

Also the facts they are checked against, read from the workspace itself: the services (directories
under ``services/`` with a ``liq-<name>`` console script), their settings Structs and drain timeouts.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from liq_common.runtime import run_service
from liq_common.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DEMO_ENV = DEPLOY / "demo.env"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
SECRET_DIR = "/run/secrets/"
"""Where compose mounts secrets in a container."""

_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    """A YAML file (safe loader; merge keys ``<<`` resolved)."""
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    """``deploy/docker-compose.yml``."""
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def interpolations(text: str) -> list[tuple[str, str | None]]:
    """Every ``${VAR}`` / ``${VAR:-default}`` / ``${VAR:?message}`` in ``text``: (name, default or None)."""
    found = []
    for match in _INTERPOLATION.finditer(text.replace("$$", "")):
        default = match[3] if match[2] in ("-", ":-") else None
        found.append((match[1], default))
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style interpolation of ``value`` with ``env`` (defaults apply when unset or empty)."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2], match[3] or ""
        current = env.get(name)
        if op in (":-", "-"):
            use_default = not current if op == ":-" else current is None
            return arg if use_default else str(current)
        if current is None or (op == ":?" and not current):
            raise KeyError(f"${{{name}}} is not set" + (f": {arg}" if arg else ""))
        return current

    return _INTERPOLATION.sub(replace, value).replace("$$", "$")


def render_environment(environment: dict[str, Any], dotenv: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A service's ``environment`` as the container sees it with ``dotenv``: variables interpolated, and
    each ``*_FILE`` secret written to a file under ``tmp_path`` (its value from ``dotenv``)."""
    secrets = compose()["secrets"]
    out: dict[str, str] = {}
    for name, raw in environment.items():
        value = interpolate(str(raw), dotenv)
        if name.endswith("_FILE") and value.startswith(SECRET_DIR):
            secret = value.removeprefix(SECRET_DIR)
            path = tmp_path / secret
            path.write_text(dotenv[secrets[secret]["environment"]] + "\n")
            value = str(path)
        out[name] = value
    return out


def read_env_file(path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """A compose ``.env`` file: ``KEY=VALUE`` lines; single quotes literal, otherwise ``${VAR}`` interpolated
    from the variables above it (and ``base``)."""
    values: dict[str, str] = dict(base or {})
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not KEY=VALUE: {line!r}")
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            values[key] = raw[1:-1]
        else:
            values[key] = interpolate(raw.strip('"'), values)
    return values


def env_file_keys(path: Path) -> list[str]:
    """Variable names defined by an env file, in order."""
    return [
        line.split("=", 1)[0].strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@dataclass(frozen=True)
class ServicePackage:
    """A workspace service: ``services/<directory>``, package ``liq_<name>``, script ``liq-<directory>``."""

    directory: str
    package: str
    settings: type[CommonSettings]

    @property
    def main_source(self) -> str:
        """Source of the service's ``__main__`` module."""
        return (ROOT / "services" / self.directory / "src" / self.package / "__main__.py").read_text()


def service_packages() -> list[ServicePackage]:
    """Every workspace service with a ``liq-<directory>`` console script, with its settings Struct."""
    found = []
    for pyproject in sorted((ROOT / "services").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        directory = pyproject.parent.name
        script = project.get("scripts", {}).get(f"liq-{directory}")
        if script is None:
            continue
        package = script.split(".", 1)[0]
        module = importlib.import_module(f"{package}.settings")
        classes = [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, CommonSettings) and obj.__module__ == module.__name__
        ]
        assert len(classes) == 1, f"{package}.settings should define one CommonSettings subclass, found {classes}"
        found.append(ServicePackage(directory, package, classes[0]))
    return found


def setting_names(cls: type[CommonSettings]) -> dict[str, msgspec.structs.FieldInfo]:
    """Environment variable name -> field, for a settings Struct."""
    return {f.encode_name: f for f in msgspec.structs.fields(cls)}


def drain_timeout(service: ServicePackage) -> float:
    """Seconds the service may take to drain after SIGTERM: ``run_service``'s default unless its
    ``__main__`` passes ``drain_timeout=``."""
    default = inspect.signature(run_service).parameters["drain_timeout"].default
    given = [float(v) for v in re.findall(r"drain_timeout\s*=\s*([0-9.]+)", service.main_source)]
    return max(given, default=float(default))


def duration_seconds(text: str) -> float:
    """Seconds of a compose duration such as ``30s``, ``1m30s``, ``500ms``."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|s|m|h)", str(text))
    if not parts or "".join(a + b for a, b in parts) != str(text):
        raise ValueError(f"bad duration {text!r}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(a) * scale[b] for a, b in parts)


def dashboards() -> dict[str, dict[str, Any]]:
    """Dashboard file name -> JSON."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def datasources() -> list[dict[str, Any]]:
    """The provisioned Grafana datasources."""
    found: list[dict[str, Any]] = []
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml")):
        found.extend(load_yaml(path).get("datasources", []))
    return found


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, datasource, query object) for every panel target, template variable and annotation."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target.get("datasource") or panel["datasource"], target
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            body = query if isinstance(query, dict) else {"query": query, "rawSql": query}
            yield f"variable ${variable['name']}", variable["datasource"], body
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "target" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["datasource"], annotation["target"]
