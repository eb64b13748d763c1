"""A small PromQL scanner: which metric names and label matchers an expression uses.

It is not a parser (``promtool`` checks the syntax); it walks the tokens and reports every vector
selector: an identifier that is not a function or aggregation (those are followed by ``(``), not a
keyword, not inside a string, a label matcher ``{...}``, a range ``[...]`` or a grouping label list
(``by (...)``, ``without``, ``on``, ``ignoring``, ``group_left``, ``group_right``). Unknown function
names are errors, so a typo cannot hide as a "function". Grafana variables must be substituted
before scanning: a ``$`` left in the expression is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# fmt: off
FUNCTIONS = frozenset(
    [
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time", "ceil",
        "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month", "day_of_week",
        "day_of_year", "days_in_month", "deg", "delta", "deriv", "exp", "floor", "histogram_avg", "histogram_count",
        "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
        "holt_winters", "double_exponential_smoothing", "hour", "idelta", "increase", "irate", "label_join",
        "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time", "min_over_time",
        "minute", "month", "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
        "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt",
        "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
        "start", "end",
    ]
)
# fmt: on
# fmt: off
AGGREGATIONS = frozenset(
    [
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
        "limitk", "limit_ratio",
    ]
)
# fmt: on
GROUPING = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
OPERATORS = frozenset(["and", "or", "unless", "bool", "offset", "atan2"])
NUMBERS = frozenset({"inf", "nan"})

# Series Prometheus makes itself, per scrape target or from alerting rules.
BUILTIN_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
TARGET_LABELS = frozenset({"job", "instance", "__name__"})

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_DURATION = r"(?:\d+(?:ms|[smhdwy]))+"
_RANGE = re.compile(rf"{_DURATION}(?:\s*:\s*(?:{_DURATION})?)?")
_NUMBER = re.compile(r"(0x[0-9a-fA-F]+|[0-9][0-9a-zA-Z_.]*)")
_MATCHER = re.compile(
    r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)\s*,?'
)


class PromQLScanError(ValueError):
    """The expression uses something this scanner refuses (unknown function, leftover variable, ...)."""


@dataclass
class Selector:
    """One vector selector: its metric name (None for ``{__name__=~...}``) and the labels it matches on."""

    metric: str | None
    labels: list[str] = field(default_factory=list)


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise PromQLScanError(f"unterminated string at {i} in {expr!r}")


def _closing(expr: str, i: int, open_: str, close: str) -> int:
    """Index just after the ``close`` matching ``expr[i] == open_``, skipping strings."""
    depth = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise PromQLScanError(f"unbalanced {open_}{close} in {expr!r}")


def _matchers(body: str, expr: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(body):
        match = _MATCHER.match(body, pos)
        if match is None:
            if body[pos:].strip():
                raise PromQLScanError(f"cannot read label matchers {{{body}}} in {expr!r}")
            break
        found.append((match[1], match[2], match[3][1:-1]))
        pos = match.end()
    return found


def _next_non_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr``, in order.

    Raises:
        PromQLScanError: An unknown function, an unsubstituted ``$`` variable, or unbalanced brackets.
    """
    found: list[Selector] = []
    i = 0
    last: Selector | None = None  # the selector a following {...} belongs to
    while i < len(expr):
        ch = expr[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
            continue
        if ch in "\"'`":
            i = _skip_string(expr, i)
            last = None
            continue
        if ch == "$":
            raise PromQLScanError(f"unsubstituted variable at {expr[i : i + 20]!r} in {expr!r}")
        if ch == "[":
            end = _closing(expr, i, "[", "]")
            if not _RANGE.fullmatch(expr[i + 1 : end - 1].strip()):
                raise PromQLScanError(f"not a range or subquery duration: {expr[i:end]!r} in {expr!r}")
            i = end
            continue
        if ch == "{":
            end = _closing(expr, i, "{", "}")
            matchers = _matchers(expr[i + 1 : end - 1], expr)
            if last is None:
                names = [v for k, op, v in matchers if k == "__name__" and op == "="]
                last = Selector(names[0] if names else None)
                found.append(last)
            last.labels.extend(k for k, _, _ in matchers)
            last = None
            i = end
            continue
        number = _NUMBER.match(expr, i)
        if number is not None and ch.isdigit():
            i = number.end()
            last = None
            continue
        ident = _IDENT.match(expr, i)
        if ident is None:
            i += 1
            last = None
            continue
        word = ident[0]
        i = ident.end()
        after = _next_non_space(expr, i)
        followed_by_paren = after < len(expr) and expr[after] == "("
        modifier = _IDENT.match(expr, after)
        if word in AGGREGATIONS and modifier is not None and modifier[0] in ("by", "without"):
            last = None  # `sum by (label) (expr)`: the grouping comes before the parenthesis
        elif word in GROUPING:
            if followed_by_paren:
                i = _closing(expr, after, "(", ")")
            last = None
        elif word in OPERATORS or word.lower() in NUMBERS:
            last = None
        elif followed_by_paren:
            if word not in FUNCTIONS and word not in AGGREGATIONS:
                raise PromQLScanError(f"unknown function {word}() in {expr!r}")
            last = None
        else:
            last = Selector(word)
            found.append(last)
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    return {s.metric for s in selectors(expr) if s.metric is not None}
