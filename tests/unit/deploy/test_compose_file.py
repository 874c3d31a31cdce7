"""compose.yaml, checked without Docker: against the Compose Specification's JSON schema
kept in deploy/schemas/ (see its SOURCE file), and for what `docker compose up` needs to
work: pinned images, a health check on everything depends_on waits for, and settings
each service accepts at start-up."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml  # type: ignore[import-untyped]  # as test_manifests.py: no stubs dependency
from pydantic import ValidationError

from feedback.config import Settings as FeedbackSettings
from helpdesk_runtime.settings import ServiceSettings
from notifications.config import Settings as NotificationsSettings
from sla.config import Settings as SlaSettings
from ticketing.config import Settings as TicketingSettings

from support.dockerfile import SERVICES, stages
from support.servers import REPO

COMPOSE = REPO / "compose.yaml"
SCHEMA = REPO / "deploy" / "schemas" / "compose-spec.json"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "ticketing": TicketingSettings,
    "sla": SlaSettings,
    "notifications": NotificationsSettings,
    "feedback": FeedbackSettings,
}
_PLACEHOLDER = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def interpolated(value: str) -> str:
    """${VAR:-default} as Compose reads it with nothing set: the local default."""

    def default(match: re.Match[str]) -> str:
        assert match.group(2) is not None, f"${{{match.group(1)}}} has no local default"
        return match.group(2)

    return _PLACEHOLDER.sub(default, value)


def test_matches_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_rejects_a_broken_file() -> None:
    """The kept schema is strict enough to catch a misspelt key."""
    schema = json.loads(SCHEMA.read_text())
    broken = {"services": {"ticketing": {"image": "x:1.0", "helthcheck": {}}}}
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_the_schema_says_where_it_came_from() -> None:
    source = (SCHEMA.parent / "SOURCE.md").read_text()
    assert re.search(r"\b[0-9a-f]{40}\b", source)  # the commit it was taken at
    assert "compose-spec.json" in source


def test_runs_every_service_built_from_its_dockerfile_target() -> None:
    services = compose()["services"]
    targets = set(stages())
    for name in SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/docker/Dockerfile"
        assert build["target"] == name
        assert name in targets
    mail = services["mailcatcher"]
    assert mail["command"][:3] == ["python", "-m", "notifications.mailcatcher"]


@pytest.mark.parametrize("name", [*SERVICES, "mailcatcher", "kafka", "postgres"])
def test_every_service_has_a_health_check(name: str) -> None:
    check = compose()["services"][name]["healthcheck"]
    assert check["test"][0] == "CMD"


@pytest.mark.parametrize("name", SERVICES)
def test_our_services_wait_for_healthy_dependencies_and_report_readiness(name: str) -> None:
    service = compose()["services"][name]
    depends = service["depends_on"]
    assert {"kafka", "postgres"} <= set(depends)
    assert all(d["condition"] == "service_healthy" for d in depends.values())
    assert "/health/ready" in " ".join(service["healthcheck"]["test"])
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]


def test_images_are_pinned_never_latest() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        repository, _, tag = image.partition("@")[0].rpartition(":")
        assert repository, f"{name}: {image}"
        assert tag not in {"", "latest"}, f"{name}: {image}"
        if "build" not in service:  # pulled, not built here: a version number
            assert re.match(r"\d+\.\d+(\.\d+)?", tag), f"{name}: {image}"
    assert ":latest" not in COMPOSE.read_text()


def test_secrets_are_placeholders_with_local_defaults() -> None:
    """No secret is written into a service's environment as a bare value."""
    secret = re.compile(r"(SECRET|PASSWORD|KEYS?)$")
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert _PLACEHOLDER.fullmatch(str(value)), f"{name}.{key} is not a ${{...}}"
            if key == "DATABASE_URL":
                assert _PLACEHOLDER.search(str(value)), f"{name}: DATABASE_URL password"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_accepts_its_environment(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings start-up would read, with the local defaults filled in, validate: no
    secret a non-local environment needs is missing, no value is malformed."""
    for key, value in compose()["services"][name]["environment"].items():
        monkeypatch.setenv(key, interpolated(str(value)))
    try:
        settings = SETTINGS[name]()
    except ValidationError as error:
        pytest.fail(f"{name} would not start:\n{error}")
    assert settings.environment != "local"  # so the dev fallbacks are not what passes
    assert settings.http_port == 8000


def test_database_passwords_match_what_postgres_creates() -> None:
    services = compose()["services"]
    postgres_env = services["postgres"]["environment"]
    for name in SERVICES:
        url = interpolated(services[name]["environment"]["DATABASE_URL"])
        password = interpolated(postgres_env[f"{name.upper()}_DB_PASSWORD"])
        assert url == f"postgresql://{name}:{password}@postgres:5432/{name}"
    init = Path(REPO / "deploy" / "postgres" / "compose-init.sh").read_text()
    assert all(name in init for name in SERVICES)
