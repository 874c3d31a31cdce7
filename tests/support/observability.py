"""The dashboard and alert rules of deploy/observability, read the way their tests need.

Grafana and Prometheus accept an expression naming a metric no one exports without a word:
the panel stays empty and the alert never fires, which looks exactly like "all is well".
So the tests pull every metric name out of the expressions and compare them with what the
services export. Extracting names needs a PromQL reader; this is a deliberately small one
(strings, label matchers, ranges and grouping clauses removed, what is left is functions,
keywords and metric names) that also catches the syntax slips a human makes (unbalanced
brackets, a malformed matcher). promtool checks the grammar for real, and runs the rules'
unit tests.
"""

import json
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not a dependency

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "helpdesk.json"
RULES = OBSERVABILITY / "prometheus" / "helpdesk-rules.yaml"
COMPONENT = REPO / "deploy" / "k8s" / "components" / "observability"

# Named on purpose though no service exports them: where each comes from.
EXTERNAL = {
    "up": "Prometheus itself, one per scrape target",
    "kube_deployment_status_replicas_available": "kube-state-metrics (kube-prometheus-stack)",
}
# Registered by a job when the service starts (not when it is built): SLA's watermark watch
# creates its gauges on its first run. The integration test scrapes a running SLA for them.
REGISTERED_AT_START = {
    "helpdesk_sla_watermark_lag_seconds": "sla",
    "helpdesk_sla_breaches_held": "sla",
}

RULE_TESTS = OBSERVABILITY / "prometheus" / "helpdesk-rules.test.yaml"
REQUIRE_PROMTOOL_ENV = "HELPDESK_REQUIRE_PROMTOOL"  # test.sh: fail, never skip, without it

_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count_over_time", "delta", "deriv", "exp", "floor",
    "histogram_quantile", "holt_winters", "idelta", "increase", "irate", "label_join",
    "label_replace", "last_over_time", "ln", "log2", "log10", "max_over_time",
    "min_over_time", "predict_linear", "quantile_over_time", "rate", "resets", "round",
    "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev_over_time", "sum_over_time",
    "time", "timestamp", "vector",
}  # fmt: skip
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}  # fmt: skip
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
_GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
_MATCHER = re.compile(r'^\s*[a-zA-Z_]\w*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*$')
_DURATION = r"(?:\d+(?:ms|[smhdwy]))+"
_IDENTIFIER = re.compile(r"(?<![\w.$:])[a-zA-Z_:][\w:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<series>.+),\s*)?(?P<label>\w+)\s*\)\s*$")


class PromQLError(ValueError):
    """An expression this reader refuses; the message says where."""


def _balanced(expr: str) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in expr:
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            raise PromQLError(f"unbalanced {char!r} in {expr!r}")
    if stack:
        raise PromQLError(f"unclosed {stack[-1]!r} in {expr!r}")


def _without_strings(expr: str) -> str:
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    if '"' in stripped.replace('""', ""):
        raise PromQLError(f"unclosed string in {expr!r}")
    return stripped


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (Grafana's $variables allowed)."""
    if match := _LABEL_VALUES.match(expr):  # a Grafana template variable's query
        return metric_names(match["series"]) if match["series"] else set()
    _balanced(expr)
    for body in re.findall(r"\{([^{}]*)\}", expr):  # matchers, before strings are blanked
        for matcher in filter(str.strip, re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', body)):
            if not _MATCHER.match(matcher):
                raise PromQLError(f"malformed label matcher {matcher!r} in {expr!r}")
    text = _without_strings(expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    for window in re.findall(r"\[([^\[\]]*)\]", text):
        parts = window.split(":")
        if window.startswith("$") or all(re.fullmatch(_DURATION, p.strip()) for p in parts if p):
            continue
        raise PromQLError(f"not a range [{window}] in {expr!r}")
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(_GROUPING, " ", text)
    text = re.sub(rf"\boffset\s+{_DURATION}", " ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word.lower() in _KEYWORDS or word in _FUNCTIONS or word in _AGGREGATIONS:
            continue
        names.add(word)
    return names


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced, for promtool's parser."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)(?::\w+)?\}?", r"\1", expr)


@cache
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_expressions() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


@cache
def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def named_metrics() -> dict[str, set[str]]:
    """Each metric name the dashboard and the rules use, with where it is used."""
    used: dict[str, set[str]] = {}
    for expr in dashboard_expressions():
        for name in metric_names(expr):
            used.setdefault(name, set()).add("dashboard")
    for rule in rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"rule {rule.get('alert') or rule.get('record')}")
    return used


def promtool() -> Path | None:
    """promtool on PATH (test.sh installs Debian's prometheus package for it), else None."""
    found = shutil.which("promtool")
    return Path(found) if found else None


def sample_names(family_name: str, kind: str) -> set[str]:
    """The names a family's samples carry on /metrics (what PromQL reads)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "info": ("_info",),
    }.get(kind, ("",))
    return {family_name + suffix for suffix in suffixes}
