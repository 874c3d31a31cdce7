"""The Kubernetes manifests (deploy/k8s), rendered and checked without a cluster.

`kubectl apply -k` is the first time a cluster sees them, and a typo there is an outage at
the worst moment; so every overlay is rendered with kustomize and validated with kubeconform
against the schemas kept in the repository, and the rules a reviewer would otherwise check by
eye are tests: the manifests must agree with the code (settings, topics, consumer groups,
ports), which changes far more often than they do.
"""

import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import PurePosixPath
from typing import Any

import certifi
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
from helpdesk_contracts.topics import TOPICS
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from helpdesk_runtime.settings import DEV_PII_MASTER_KEYS

from support import kubetools

OVERLAYS = ("dev", "prod")
PARTS = ("api", "consumers", "jobs")
Manifest = dict[str, Any]

_SERVICES: dict[str, tuple[type[BaseSettings], Callable[[Any], ServiceRuntime]]] = {
    "ticketing": (ticketing.config.Settings, ticketing.bootstrap.build_runtime),
    "sla": (sla.config.Settings, sla.bootstrap.build_runtime),
    "notifications": (notifications.config.Settings, notifications.bootstrap.build_runtime),
    "feedback": (feedback.config.Settings, feedback.bootstrap.build_runtime),
}

# What a Secret holds, for the settings' validation: the value's shape, never a real one.
_SECRET_VALUES = {
    "DATABASE_URL": "postgresql://app:secret@db-rw:5432/app",
    "JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nplaceholder\n-----END PUBLIC KEY-----",
    "PII_MASTER_KEYS": DEV_PII_MASTER_KEYS,
}


@cache
def _rendered(overlay: str) -> str:
    return kubetools.build(overlay)


@cache
def _manifests(overlay: str) -> tuple[Manifest, ...]:
    return tuple(doc for doc in yaml.safe_load_all(_rendered(overlay)) if doc)


def _of_kind(overlay: str, kind: str) -> Iterator[Manifest]:
    return (m for m in _manifests(overlay) if m["kind"] == kind)


def _deployments(overlay: str) -> Iterator[Manifest]:
    return _of_kind(overlay, "Deployment")


def _service_of(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/name"])


def _config(overlay: str, name: str) -> dict[str, str]:
    """A ConfigMap's data, by the name the Deployment refers to (with kustomize's hash)."""
    (found,) = (m for m in _of_kind(overlay, "ConfigMap") if m["metadata"]["name"] == name)
    return dict(found["data"])


def _environment(overlay: str, container: Manifest) -> dict[str, str]:
    """What the container's process finds in its environment; optional Secret keys left out
    (the settings must hold without them) and the others given a placeholder."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "whole Secrets as env hide what a service is given"
        env |= _config(overlay, source["configMapRef"]["name"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif not var["valueFrom"]["secretKeyRef"].get("optional", False):
            env[var["name"]] = _SECRET_VALUES.get(
                var["name"], "a-secret-of-32-bytes-or-more-0123456789"
            )
    return env


def _settings(
    overlay: str, container: Manifest, service: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The service's Settings as the container would build them at start-up."""
    settings_class, _ = _SERVICES[service]
    for field in settings_class.model_fields:  # nothing from the shell running the tests
        monkeypatch.delenv(field.upper(), raising=False)
    env = _environment(overlay, container)
    unknown = sorted(set(env) - {f.upper() for f in settings_class.model_fields})
    assert not unknown, f"{service}: no such setting: {unknown}"
    if "KAFKA_SSL_CAFILE" in env:  # mounted in the pod; a real file here, to build a runtime
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert str(PurePosixPath(env["KAFKA_SSL_CAFILE"]).parent) in mounts, service
        env["KAFKA_SSL_CAFILE"] = certifi.where()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_matches_the_kept_schemas(overlay: str) -> None:
    result = kubetools.validate(_rendered(overlay))
    assert result.returncode == 0, result.stdout + result.stderr
    # Skipped would mean a kind without a schema, checked by nothing.
    assert re.search(r"Invalid: 0, Errors: 0, Skipped: 0", result.stdout), result.stdout


def test_kustomizations_use_no_remote_bases() -> None:
    """`kustomize build` must work offline (and a remote base is code we did not review)."""
    for path in kubetools.K8S.rglob("kustomization.yaml"):
        text = yaml.safe_load(path.read_text())
        for entry in [*text.get("resources", []), *text.get("components", [])]:
            assert "://" not in entry, (path, entry)
            assert not entry.startswith("github.com"), (path, entry)
            assert (path.parent / entry).exists(), (path, entry)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlay: str) -> None:
    for deployment in _deployments(overlay):
        pod = deployment["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            name, _, tag = container["image"].rpartition(":")
            assert name.startswith("ghcr.io/helpdesk/"), container["image"]
            assert tag, container["image"]
            assert tag != "latest", container["image"]
            assert "/" not in tag, container["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_runs_each_process_type(overlay: str) -> None:
    names = {d["metadata"]["name"] for d in _deployments(overlay)}
    assert names == {f"{service}-{part}" for service in _SERVICES for part in PARTS}
    for deployment in _deployments(overlay):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["PARTS"] == deployment["metadata"]["labels"]["app.kubernetes.io/component"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_probed_limited_locked_down_and_migrated_first(overlay: str) -> None:
    for deployment in _deployments(overlay):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        tmp = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in [*pod["initContainers"], *pod["containers"]]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (name, container["name"])
            locked = container["securityContext"]
            assert locked["readOnlyRootFilesystem"] is True, name
            assert locked["allowPrivilegeEscalation"] is False, name
            assert locked["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp, (name, "a writable /tmp on a read-only root")
        (main,) = pod["containers"]
        assert main["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert main["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        service = _service_of(deployment)
        (init,) = pod["initContainers"]
        assert init["command"] == ["python", "-m", service, "migrate"], name
        assert init["image"] == main["image"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_pod_disruption_budget(overlay: str) -> None:
    budgets = [
        pdb["spec"]["selector"]["matchLabels"] for pdb in _of_kind(overlay, "PodDisruptionBudget")
    ]
    for deployment in _deployments(overlay):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if b.items() <= labels.items()]
        assert len(covering) == 1, deployment["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_the_graceful_shutdown(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubelet kills at terminationGracePeriodSeconds: the preStop pause (endpoints
    removed before the process hears SIGTERM) and SHUTDOWN_GRACE_S must both fit before."""
    for deployment in _deployments(overlay):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        settings = _settings(overlay, container, _service_of(deployment), monkeypatch)
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert pod["terminationGracePeriodSeconds"] > settings.shutdown_grace_s + pause + 2, (
            deployment["metadata"]["name"]
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_a_service_requires_is_provided(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each container's environment makes valid Settings outside ENVIRONMENT=local (where no
    development secret fills a gap), names only real settings, and serves on its port."""
    for deployment in _deployments(overlay):
        service = _service_of(deployment)
        pod = deployment["spec"]["template"]["spec"]
        for container in [*pod["initContainers"], *pod["containers"]]:
            settings = _settings(overlay, container, service, monkeypatch)
            assert settings.environment != "local", deployment["metadata"]["name"]
            assert settings.kafka_create_topics is False, "Strimzi owns the topics"
        (main,) = pod["containers"]
        settings = _settings(overlay, main, service, monkeypatch)
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert ports["http"] == settings.http_port, deployment["metadata"]["name"]


def _runtime(
    overlay: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[ServiceRuntime, set[tuple[str, str]]]:
    """The service's runtime built from its consumers Deployment's settings (nothing
    starts), and the (group, topic) pairs it subscribes to."""
    subscribed: set[tuple[str, str]] = set()

    def record(_runtime: ServiceRuntime, spec: ConsumerSpec) -> None:
        subscribed.add((spec.group_id, spec.topic))

    monkeypatch.setattr(ServiceRuntime, "_subscribe", record)
    (deployment,) = (
        d for d in _deployments(overlay) if d["metadata"]["name"] == f"{service}-consumers"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    settings = _settings(overlay, container, service, monkeypatch)
    return _SERVICES[service][1](settings), subscribed


def _kafka_topics(overlay: str) -> dict[str, Manifest]:
    return {t["spec"]["topicName"]: t["spec"] for t in _of_kind(overlay, "KafkaTopic")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_topic_a_service_uses_is_a_kafka_topic_as_the_code_would_create_it(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = _kafka_topics(overlay)
    for name, topic in TOPICS.items():  # the contracts: every producer's and consumer's
        assert name in topics, name
        assert f"{name}.dlq" in topics, name
        assert topics[name]["partitions"] == topic.partitions, name
    for service in _SERVICES:
        runtime, subscribed = _runtime(overlay, service, monkeypatch)
        # What the service would create itself with KAFKA_CREATE_TOPICS on (retired topics
        # are never created, only aged out where an older deployment has them).
        for spec in (s for s in runtime._topics if not s.retired):
            assert spec.name in topics, (service, spec.name)
            kafka = topics[spec.name]
            assert kafka["partitions"] == spec.partitions, spec.name
            config = {k: str(v) for k, v in kafka["config"].items()}
            assert spec.config.items() <= config.items(), spec.name
            assert ("cleanup.policy" in config) == spec.compacted, spec.name
        assert subscribed, service
        for _group, name in subscribed:
            assert name in topics, (service, name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumers_scale_on_the_lag_of_every_group_and_never_past_the_partitions(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One trigger per (group, topic) the service consumes; a group member beyond a topic's
    partitions gets none of it, so the fewest partitions cap the replicas (times the members
    each process runs, CONSUMER_CONCURRENCY)."""
    topics = _kafka_topics(overlay)
    scaled = {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"] for s in _of_kind(overlay, "ScaledObject")
    }
    for service in _SERVICES:
        runtime, subscribed = _runtime(overlay, service, monkeypatch)
        spec = scaled[f"{service}-consumers"]
        lag = {
            (t["metadata"]["consumerGroup"], t["metadata"]["topic"])
            for t in spec["triggers"]
            if t["type"] == "kafka"
        }
        assert lag == subscribed, service
        fewest = min(topics[topic]["partitions"] for _group, topic in lag)
        members = runtime.settings.consumer_concurrency
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], service
        assert spec["maxReplicaCount"] * members <= fewest, service
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0, "fast up"
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300, "slow down"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_apis_scale_on_cpu(overlay: str) -> None:
    targets = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]
        for h in _of_kind(overlay, "HorizontalPodAutoscaler")
    }
    assert set(targets) == {f"{service}-api" for service in _SERVICES}
    for spec in targets.values():
        (metric,) = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]


def test_production_denies_by_default_and_pre_scales_for_the_month_start() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _of_kind("prod", "NetworkPolicy")}
    deny = policies["helpdesk-default-deny"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    for service in _SERVICES:
        assert f"{service}-egress" in policies
        assert f"{service}-api-ingress" in policies
    for scaled in _of_kind("prod", "ScaledObject"):
        assert any(t["type"] == "cron" for t in scaled["spec"]["triggers"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_own_backed_up_database(overlay: str) -> None:
    clusters = {c["metadata"]["name"]: c["spec"] for c in _of_kind(overlay, "Cluster")}
    scheduled = {b["spec"]["cluster"]["name"] for b in _of_kind(overlay, "ScheduledBackup")}
    for service in _SERVICES:
        cluster = clusters[f"{service}-db"]
        assert cluster["backup"]["barmanObjectStore"]["destinationPath"].endswith(f"/{service}")
        assert f"{service}-db" in scheduled
    for deployment in _deployments(overlay):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        (url,) = (v for v in container["env"] if v["name"] == "DATABASE_URL")
        # CloudNativePG's generated "<cluster>-app" Secret: the service's own database only.
        assert url["valueFrom"]["secretKeyRef"]["name"] == f"{_service_of(deployment)}-db-app"


def _acls(user: Manifest, kind: str, operation: str) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == kind and operation in acl["operations"]
        and acl["resource"]["patternType"] == "literal"
    }  # fmt: skip


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_signs_in_as_its_kafka_user_allowed_exactly_what_its_code_does(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Least privilege, checked against the code: a service's KafkaUser may read the topics
    it consumes, write their dead letters and the topics the contracts say it produces, and
    join its groups; nothing else. Every process signs in as it over TLS, and so does KEDA."""
    users = {u["metadata"]["name"]: u for u in _of_kind(overlay, "KafkaUser")}
    for service in _SERVICES:
        runtime, _ = _runtime(overlay, service, monkeypatch)
        access = runtime.kafka_access()
        user = users[service]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert _acls(user, "topic", "Read") == access.reads, service
        assert _acls(user, "topic", "Write") == access.writes, service
        assert _acls(user, "group", "Read") == access.groups, service
        assert len(user["spec"]["authorization"]["acls"]) == (
            len(access.reads) + len(access.writes) + len(access.groups)
        ), f"{service}: an ACL more than the code needs"
        for deployment in (d for d in _deployments(overlay) if _service_of(d) == service):
            pod = deployment["spec"]["template"]["spec"]
            ca_volumes = {
                v["name"] for v in pod["volumes"]
                if v.get("secret", {}).get("secretName") == "helpdesk-kafka-cluster-ca-cert"
            }  # fmt: skip
            for container in [*pod["initContainers"], *pod["containers"]]:
                settings = _settings(overlay, container, service, monkeypatch)
                assert settings.kafka_security_protocol == "SASL_SSL", service
                assert settings.kafka_sasl_username == service
                (password,) = (v for v in container["env"] if v["name"] == "KAFKA_SASL_PASSWORD")
                assert password["valueFrom"]["secretKeyRef"] == {"name": service, "key": "password"}
                assert {m["name"] for m in container["volumeMounts"]} & ca_volumes, service
    scaled = {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"] for s in _of_kind(overlay, "ScaledObject")
    }
    (auth,) = _of_kind(overlay, "TriggerAuthentication")
    assert {e["name"] for e in auth["spec"]["env"]} == {
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
    }
    for service in _SERVICES:
        lag = [t for t in scaled[f"{service}-consumers"]["triggers"] if t["type"] == "kafka"]
        assert lag, service
        for trigger in lag:
            assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
            metadata = trigger["metadata"]
            assert (metadata["sasl"], metadata["tls"]) == ("scram_sha512", "enable")
            assert metadata["bootstrapServers"].endswith(":9093"), "the TLS listener"
