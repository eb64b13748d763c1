"""Expansion of a Grafana PostgreSQL query the way Grafana does it, so the SQL can run in a test.

Order as in Grafana: the frontend first substitutes template and global variables (``$var``,
``${var}``, ``[[var]]``, ``$__interval``, ``$__interval_ms``, ``$__from``, ``$__to``); multi-value and
"All" variables become a comma-separated list of single-quoted values, as Grafana formats them for
SQL datasources. The backend then expands the macros with Grafana's own pattern
``\\$__(\\w+)\\(([^)]*)\\)``, so a macro whose arguments contain ``)`` breaks here as it would in
Grafana. Output of the PostgreSQL macros follows Grafana's postgres datasource (``macros.go``).
Anything left that starts with ``$`` is an error: an unknown macro or variable would reach
PostgreSQL as garbage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")
_INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class MacroError(ValueError):
    """A macro or variable Grafana would not expand, or bad macro arguments."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the panel's interval (e.g. ``"1m"``)."""

    start: datetime
    end: datetime
    interval: str = "1m"

    def iso(self, moment: datetime) -> str:
        """RFC 3339 in UTC, as Grafana writes times into SQL."""
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def interval_seconds(text: str) -> float:
    """Seconds of a Grafana interval such as ``5m`` (quotes allowed, as Grafana strips them)."""
    match = _INTERVAL.match(text.strip().strip("'\""))
    if match is None:
        raise MacroError(f"bad interval {text!r}")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def _sql_value(value: str | list[str]) -> str:
    if isinstance(value, list):
        return ",".join("'" + v.replace("'", "''") + "'" for v in value)
    return value


def substitute_variables(sql: str, rng: TimeRange, variables: dict[str, str | list[str]]) -> str:
    """Grafana's frontend step: template and global variables (macros with ``(`` are left alone)."""
    globals_ = {
        "__interval": rng.interval,
        "__interval_ms": str(int(interval_seconds(rng.interval) * 1000)),
        "__from": str(int(rng.start.timestamp() * 1000)),
        "__to": str(int(rng.end.timestamp() * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        end = match.end()
        if name.startswith("__") and end < len(sql) and sql[end] == "(" and name not in globals_:
            return match[0]  # a macro: the backend expands it
        if name in globals_:
            return globals_[name]
        if name in variables:
            return _sql_value(variables[name])
        raise MacroError(f"unknown variable ${name} in {sql!r}")

    return _VARIABLE.sub(replace, sql)


def _args(raw: str) -> list[str]:
    return [a.strip() for a in raw.split(",")] if raw.strip() else []


def expand_macros(sql: str, rng: TimeRange) -> str:
    """Grafana's backend step: the PostgreSQL datasource macros."""
    start, end = rng.iso(rng.start), rng.iso(rng.end)

    def replace(match: re.Match[str]) -> str:
        name, args = match[1], _args(match[2])

        def need(count: int) -> None:
            if len(args) < count:
                raise MacroError(f"$__{name} needs {count} argument(s), got {args}")

        if name == "time":
            need(1)
            return f'{args[0]} AS "time"'
        if name == "timeEpoch":
            need(1)
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "timeFilter":
            need(1)
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        if name == "timeFrom":
            return f"'{start}'"
        if name == "timeTo":
            return f"'{end}'"
        if name in ("timeGroup", "timeGroupAlias"):
            need(2)
            seconds = interval_seconds(args[1])
            step = int(seconds) if seconds == int(seconds) else seconds
            expression = f"floor(extract(epoch from {args[0]})/{step})*{step}"
            return expression + (' AS "time"' if name == "timeGroupAlias" else "")
        if name == "unixEpochFilter":
            need(1)
            return f"{args[0]} >= {int(rng.start.timestamp())} AND {args[0]} <= {int(rng.end.timestamp())}"
        if name == "unixEpochFrom":
            return str(int(rng.start.timestamp()))
        if name == "unixEpochTo":
            return str(int(rng.end.timestamp()))
        raise MacroError(f"unknown macro $__{name}")

    expanded = _MACRO.sub(replace, sql)
    leftover = re.search(r"\$\w+|\$\{|\[\[", expanded)
    if leftover is not None:
        raise MacroError(f"unexpanded {leftover[0]!r} in {expanded!r}")
    return expanded


def expand(sql: str, rng: TimeRange, variables: dict[str, str | list[str]]) -> str:
    """The SQL Grafana sends to PostgreSQL for ``sql``."""
    return expand_macros(substitute_variables(sql, rng, variables), rng)
