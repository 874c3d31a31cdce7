"""The Grafana dashboard and the Prometheus alert rules (deploy/observability), checked
without Grafana or Prometheus.

Neither complains about a metric that does not exist: the panel is empty, the alert never
fires. So every name they use must be one the services export, read from the services'
own registries (each service's runtime built in-process, not started), not from a list
kept by hand that would drift from the code. A few gauges appear only once a service runs
(tests/integration/deploy/test_scraped_metric_names.py scrapes those).
"""

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # types-PyYAML is not a dependency
from pydantic_settings import BaseSettings

import feedback.bootstrap
import feedback.config
import notifications.bootstrap
import notifications.config
import sla.bootstrap
import sla.config
import ticketing.bootstrap
import ticketing.config
from helpdesk_runtime.service import ServiceRuntime

from support import kubetools
from support import observability as obs

_SERVICES: dict[str, tuple[type[BaseSettings], Callable[[Any], ServiceRuntime]]] = {
    "ticketing": (ticketing.config.Settings, ticketing.bootstrap.build_runtime),
    "sla": (sla.config.Settings, sla.bootstrap.build_runtime),
    "notifications": (notifications.config.Settings, notifications.bootstrap.build_runtime),
    "feedback": (feedback.config.Settings, feedback.bootstrap.build_runtime),
}
_DURATION = re.compile(r"^(\d+(ms|[smhdwy]))+$")


def _exported_when_built() -> dict[str, set[str]]:
    """Sample names on each service's /metrics, from its runtime's registry (not started:
    no database or Kafka needed)."""
    exported: dict[str, set[str]] = {}
    for service, (settings_class, build_runtime) in _SERVICES.items():
        runtime = build_runtime(settings_class())
        for family in runtime.metrics.registry.collect():
            for name in obs.sample_names(family.name, family.type):
                exported.setdefault(name, set()).add(service)
    return exported


def test_every_metric_named_is_exported_by_some_service() -> None:
    exported = _exported_when_built()
    used = obs.named_metrics()
    unknown = {
        name: sorted(where)
        for name, where in used.items()
        if name not in exported and name not in obs.EXTERNAL and name not in obs.REGISTERED_AT_START
    }
    assert not unknown, f"named but exported by no service: {unknown}"
    # The exceptions stay honest: each is still used, and none is in fact exported already.
    assert set(obs.EXTERNAL) <= set(used)
    assert set(obs.REGISTERED_AT_START) <= set(used)
    assert not set(obs.REGISTERED_AT_START) & set(exported)


def test_the_dashboard_covers_what_operators_watch() -> None:
    """Throughput, freshness, lag, dead letters, SLA, notifications, HTTP, relay, timers."""
    used = {name for name, where in obs.named_metrics().items() if "dashboard" in where}
    for name in (
        "helpdesk_events_consumed_total", "helpdesk_events_produced_total",
        "helpdesk_event_age_seconds_bucket", "helpdesk_consumer_lag",
        "helpdesk_events_dead_lettered_total", "helpdesk_sla_watermark_lag_seconds",
        "helpdesk_notifications_deliveries_total", "helpdesk_http_request_seconds_bucket",
        "helpdesk_http_requests_total", "helpdesk_outbox_backlog", "helpdesk_timers_overdue",
    ):  # fmt: skip
        assert name in used, name


def test_the_dashboard_is_valid_and_every_panel_has_a_title_and_a_datasource() -> None:
    board = obs.dashboard()  # json.loads: refuses what Grafana's import would refuse
    assert board["uid"]
    assert board["title"]
    assert board["schemaVersion"] >= 39  # Grafana 11 or later
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["service"]["type"] == "query"
    assert variables["service"]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in obs.panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in obs.panels(board):
        assert panel.get("title"), panel
        assert "gridPos" in panel, panel["title"]
        if panel["type"] == "row":
            continue
        title = panel["title"]
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel.get("description"), panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            assert target["expr"].strip(), panel["title"]
    # Panels that follow the service picker use it (SLA's and notifications' own do not).
    following = [t for p in obs.panels(board) for t in p.get("targets", [])
                 if 'service=~"$service"' in t["expr"]]  # fmt: skip
    assert len(following) > 20


def test_every_expression_reads_as_promql() -> None:
    for expr in obs.dashboard_expressions() + [r["expr"] for r in obs.rules()]:
        obs.metric_names(expr)  # raises on unbalanced brackets, bad matchers, bad ranges


@pytest.mark.parametrize(
    "expr",
    [
        'sum(rate(x_total{a="b"}[5m])',  # unclosed
        "rate(x_total{a=b}[5m])",  # unquoted value
        'rate(x_total{a="b}[5m])',  # unclosed string
        "rate(x_total[5 minutes])",
    ],
)
def test_the_reader_refuses_broken_expressions(expr: str) -> None:
    with pytest.raises(obs.PromQLError):
        obs.metric_names(expr)


def test_the_reader_finds_only_metric_names() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (service, le)"
        ' (rate(a_bucket{route!~"/x|y"}[$__rate_interval])))'
        " / on (service) group_left sum without (pod) (b offset 10m) > 1e3 and bool c"
        " unless topk(3, d[5m:1m])"
    )
    assert obs.metric_names(expr) == {"a_bucket", "b", "c", "d"}
    assert obs.metric_names('label_values(e{namespace=~"$namespace"}, service)') == {"e"}


def test_the_rules_file_is_a_rule_file_an_sre_can_act_on() -> None:
    document = yaml.safe_load(obs.RULES.read_text())
    assert set(document) == {"groups"}
    groups = obs.rule_groups()
    assert len({g["name"] for g in groups}) == len(groups)
    alerts = [r["alert"] for r in obs.rules()]
    assert len(set(alerts)) == len(alerts)
    for rule in obs.rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"Helpdesk[A-Z][A-Za-z]+", rule["alert"])
        assert _DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]
        assert "$" not in rule["expr"].replace("$labels", ""), "Grafana variables in a rule"
    # What the issue asks alerts for.
    for wanted in ("HelpdeskConsumerLagGrowing", "HelpdeskEventAgeHigh", "HelpdeskDeadLetters",
                   "HelpdeskSlaBreachRateHigh", "HelpdeskOutboxBacklog", "HelpdeskTimersOverdue",
                   "HelpdeskServiceNotReady"):  # fmt: skip
        assert wanted in alerts


def test_every_alert_is_explained_in_the_readme() -> None:
    readme = (obs.OBSERVABILITY / "README.md").read_text()
    for rule in obs.rules():
        assert f"`{rule['alert']}`" in readme, rule["alert"]


@pytest.fixture
def promtool() -> Path:
    found = obs.promtool()
    if found is None:
        if os.environ.get(obs.REQUIRE_PROMTOOL_ENV):
            pytest.fail("promtool is not on PATH (test.sh installs it: Debian's prometheus)")
        pytest.skip("promtool is not on PATH: apt-get install --no-install-recommends prometheus")
    return found


def _promtool(promtool: Path, *args: str) -> None:
    done = subprocess.run([str(promtool), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_rules_and_parses_the_dashboard(promtool: Path, tmp_path: Path) -> None:
    _promtool(promtool, "check", "rules", str(obs.RULES))
    # Each panel's expression as a recording rule: promtool parses it as Prometheus would.
    expressions = [
        obs.as_promql(e) for e in obs.dashboard_expressions() if not e.startswith("label_values(")
    ]
    panels = tmp_path / "dashboard-rules.yaml"
    panels.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expression_{n}", "expr": e} for n, e in enumerate(expressions)
    ]}]}))  # fmt: skip
    assert len(expressions) > 30
    _promtool(promtool, "check", "rules", str(panels))


def test_the_alerts_fire_when_they_should_and_stay_quiet_otherwise(promtool: Path) -> None:
    """deploy/observability/prometheus/helpdesk-rules.test.yaml: promtool's unit tests."""
    _promtool(promtool, "test", "rules", str(obs.RULE_TESTS))


def test_the_prometheus_rule_holds_the_rules_file() -> None:
    """The PrometheusRule is a copy (kustomize cannot wrap a file into a resource's spec)."""
    rule = yaml.safe_load((obs.COMPONENT / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load(obs.RULES.read_text()), (
        "copy deploy/observability/prometheus/helpdesk-rules.yaml's groups into the"
        " PrometheusRule's spec"
    )


def test_the_component_renders_with_the_base(tmp_path: Path) -> None:
    """As an overlay that lists the component would render it: scraping, rules, dashboard."""
    relative = Path(*[".."] * len(tmp_path.parts[1:])) / kubetools.K8S.relative_to("/")
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: helpdesk\nresources:\n- {relative / 'base'}\n"
        f"components:\n- {relative / 'components' / 'observability'}\n"
    )
    done = subprocess.run(
        [str(kubetools.tool("kustomize")), "build", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    manifests = {(m["kind"], m["metadata"]["name"]): m
                 for m in yaml.safe_load_all(done.stdout) if m}  # fmt: skip
    monitor = manifests[("PodMonitor", "helpdesk")]
    assert monitor["metadata"]["namespace"] == "helpdesk"
    (selector,) = monitor["spec"]["selector"]["matchExpressions"]
    assert set(selector["values"]) == set(_SERVICES)
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    deployments = [m for (kind, _), m in manifests.items() if kind == "Deployment"]
    for deployment in deployments:  # every part's pods expose the port scraped
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert endpoint["port"] in {p["name"] for p in container["ports"]}
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert "service" in targets  # the dashboard's picker and the rules group by it
    assert manifests[("PrometheusRule", "helpdesk")]["spec"]["groups"] == obs.rule_groups()
    board = manifests[("ConfigMap", "helpdesk-grafana-dashboard")]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["data"]["helpdesk.json"] == obs.DASHBOARD.read_text()
