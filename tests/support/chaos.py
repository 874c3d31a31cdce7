"""The pieces of the chaos suite: servers of its own that it may kill, the ticketing service
as a real process, and a steady intake load whose every ticket is counted afterwards."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from helpdesk_contracts import EventEnvelope, kafka_key
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from sla.handlers import TICKETS_TOPIC

from support.events import submitted
from support.fixtures import start_group_at_end, topic_exists
from support.proc import LoggedProcess
from support.servers import REPO
from support.service import free_port

INTAKE = "ticketing.intake.v1"

# Apart from the test instance: the suite kills these servers, which nothing else uses.
# The ports stay below Linux's ephemeral range (32768 and up): a client that keeps
# reconnecting to a port in that range while its server is down can be given that very
# port as its own and connect to itself, and the restarted server then cannot bind it.
CHAOS_INSTANCE = {
    "HELPDESK_LOCAL_DIR": str(REPO / ".local" / "chaos"),
    "HELPDESK_KAFKA_PORT": os.environ.get("HELPDESK_CHAOS_KAFKA_PORT", "31092"),
    "HELPDESK_KAFKA_CONTROLLER_PORT": os.environ.get("HELPDESK_CHAOS_CONTROLLER_PORT", "31093"),
    "HELPDESK_PG_PORT": os.environ.get("HELPDESK_CHAOS_PG_PORT", "31432"),
    # Named, not derived: the test instance's own (test.sh exports it) must not leak in.
    "HELPDESK_KAFKA_SASL_PORT": os.environ.get("HELPDESK_CHAOS_SASL_PORT", "31094"),
}
INFRA = REPO / "deploy" / "local" / "infra.sh"


def infra(command: str) -> str:
    """Run deploy/local/infra.sh for the chaos instance (`up` restarts what is down)."""
    done = subprocess.run(
        [str(INFRA), command], env={**os.environ, **CHAOS_INSTANCE},
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"infra.sh {command} failed:\n{done.stderr[-3000:]}")
    return done.stdout


@dataclass(frozen=True)
class ChaosServers:
    kafka_bootstrap: str
    admin_url: str

    @classmethod
    def up(cls) -> "ChaosServers":
        infra("up")
        values = dict(
            line.removeprefix("export ").split("=", 1)
            for line in infra("env").splitlines()
            if line.startswith("export ")
        )
        return cls(values["KAFKA_BOOTSTRAP_SERVERS"], values["DATABASE_ADMIN_URL"])

    def kafka_pid(self) -> int:
        return int((Path(CHAOS_INSTANCE["HELPDESK_LOCAL_DIR"]) / "kafka" / "kafka.pid").read_text())

    async def postgres_pid(self) -> int:
        admin = await asyncpg.connect(self.admin_url)
        try:
            data = await admin.fetchval("SHOW data_directory")
        finally:
            await admin.close()
        return int((Path(data) / "postmaster.pid").read_text().splitlines()[0])

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_url)


def stop(pid: int, sig: signal.Signals, timeout_s: float = 60) -> None:
    """Send `sig` and wait until the process is gone."""
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"process {pid} did not stop after {sig.name}")


@dataclass
class ServiceProcess(LoggedProcess):
    """`python -m <module>` (ticketing unless told) as a process of its own, restarted as
    Kubernetes would."""

    database_url: str
    kafka_bootstrap: str
    log_path: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)  # more settings, or other values
    module: str = "ticketing"
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "HTTP_PORT": str(self.port),
            "LOG_FORMAT": "json",
            "CONSUMER_BATCH_TIMEOUT_MS": "50",
            "OUTBOX_POLL_INTERVAL_S": "0.2",
            "SHUTDOWN_GRACE_S": "8",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=env, stdout=log, stderr=log,
                cwd=REPO,
            )  # fmt: skip

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.kill9()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                answer = await http.get(f"http://127.0.0.1:{self.port}/health/ready")
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    async def wait_ready(self, timeout_s: float = 120) -> float:
        """Seconds until ready; the process must not die meanwhile."""
        started = time.monotonic()
        async with asyncio.timeout(timeout_s):
            while not await self.ready():
                assert self.running(), self.log_tail()
                await asyncio.sleep(0.2)
        return time.monotonic() - started


@dataclass
class Load:
    """TicketSubmitted at a steady rate for one tenant; remembers every key it sent."""

    producer: Producer
    tenant: str
    per_second: int
    seconds: float
    sent: list[bytes] = field(default_factory=list)

    async def run(self) -> None:
        total = int(self.per_second * self.seconds)
        tick = 0.1
        per_tick = max(1, int(self.per_second * tick))
        started = time.monotonic()
        while len(self.sent) < total:
            batch = [
                submitted(f"chaos-{uuid.uuid4().hex[:12]}", tenant=self.tenant)
                for _ in range(min(per_tick, total - len(self.sent)))
            ]
            await _send_until_accepted(self.producer, batch)
            self.sent += [kafka_key(e) for e in batch]
            # Paced by the clock, not by a fixed pause: catches up after a slow send.
            due = started + len(self.sent) / self.per_second
            await asyncio.sleep(max(0.0, due - time.monotonic()))


async def _send_until_accepted(producer: Producer, batch: list[EventEnvelope[Any]]) -> None:
    """A publisher retries until the broker takes its events (it is down in some faults)."""
    messages = [OutgoingMessage(INTAKE, e.to_json(), kafka_key(e)) for e in batch]
    while True:
        try:
            await producer.send_many(messages)
            return
        except Exception:  # the broker is away: the same events again, as a publisher would
            await asyncio.sleep(0.5)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 120) -> float:
    """Seconds until `check` passes."""
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        # The condition is outside this process: nothing to wait on but time.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return time.monotonic() - started


@asynccontextmanager
async def ticketing_and_sla(
    database_url: str, sla_database_url: str, kafka_bootstrap: str, logs: Path, name: str
) -> AsyncIterator[tuple[ServiceProcess, ServiceProcess]]:
    """Ticketing and the SLA service as processes of their own, ready; stopped afterwards.
    Their logs are `<logs>/ticketing.log` and `<logs>/sla.log`. Their consumer groups are
    new, the SLA's starting at the end of what earlier tests left on a shared broker."""
    group = f"{name}-{uuid.uuid4().hex[:8]}"
    if await topic_exists(kafka_bootstrap, TICKETS_TOPIC):
        await start_group_at_end(kafka_bootstrap, TICKETS_TOPIC, group + "-sla")
    ticketing = ServiceProcess(database_url, kafka_bootstrap, logs / "ticketing.log", env={
        "DIRECTORY_GROUP_ID": group, "INTAKE_GROUP_ID": group + "-i", "SLA_GROUP_ID": group + "-s",
    })  # fmt: skip
    sla = ServiceProcess(sla_database_url, kafka_bootstrap, logs / "sla.log",
                         env={"TICKETS_GROUP_ID": group + "-sla"}, module="sla")  # fmt: skip
    sla.start()
    ticketing.start()
    try:
        await sla.wait_ready()
        await ticketing.wait_ready()
        yield ticketing, sla
    finally:
        ticketing.stop()
        sla.stop()
