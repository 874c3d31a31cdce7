"""Finds the real Kafka broker and PostgreSQL the integration tests run against.

In order: servers named by KAFKA_BOOTSTRAP_SERVERS / DATABASE_ADMIN_URL; testcontainers
when HELPDESK_TESTCONTAINERS=1 (machines with Docker); otherwise the project's own
deploy/local/infra.sh starts a test instance of them, on ports and data of its own (and
leaves it running for the next run).
"""

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SaslListener:
    """The broker's SASL_PLAINTEXT (SCRAM-SHA-512) listener and its user."""

    bootstrap: str
    username: str
    password: str


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    database_admin_url: str  # a superuser DSN; tests create their own databases
    kafka_sasl: SaslListener | None = None  # infra.sh's; not of testcontainers' Kafka


def _sasl(values: dict[str, str]) -> SaslListener | None:
    names = ("HELPDESK_KAFKA_SASL_BOOTSTRAP", "HELPDESK_KAFKA_SASL_USER",
             "HELPDESK_KAFKA_SASL_PASSWORD")  # fmt: skip
    found = [values.get(name) for name in names]
    return SaslListener(*found) if all(found) else None  # type: ignore[arg-type]


# The same separate instance deploy/local/test.sh uses, apart from what `make up` runs.
TEST_INSTANCE = {
    "HELPDESK_LOCAL_DIR": str(REPO / ".local" / "test"),
    "HELPDESK_KAFKA_PORT": "29092",
    "HELPDESK_KAFKA_CONTROLLER_PORT": "29093",
    "HELPDESK_KAFKA_SASL_PORT": "29094",
    "HELPDESK_PG_PORT": "25432",
}


def _from_infra_script() -> Servers:
    script = REPO / "deploy" / "local" / "infra.sh"
    environment = {**TEST_INSTANCE, **os.environ}
    subprocess.run([str(script), "up"], check=True, env=environment)
    env = subprocess.run(
        [str(script), "env"], check=True, capture_output=True, text=True, env=environment
    )
    values = dict(
        line.removeprefix("export ").split("=", 1)
        for line in env.stdout.splitlines()
        if line.startswith("export ")
    )
    return Servers(values["KAFKA_BOOTSTRAP_SERVERS"], values["DATABASE_ADMIN_URL"], _sasl(values))


@contextmanager
def _from_testcontainers() -> Iterator[Servers]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer().with_kraft())
        pg = stack.enter_context(PostgresContainer("postgres:16", driver=None))
        yield Servers(kafka.get_bootstrap_server(), pg.get_connection_url())


@contextmanager
def servers() -> Iterator[Servers]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_ADMIN_URL")
    if kafka and database:
        yield Servers(kafka, database, _sasl(dict(os.environ)))
    elif os.environ.get("HELPDESK_TESTCONTAINERS") == "1":
        with _from_testcontainers() as found:
            yield found
    else:
        yield _from_infra_script()
