"""No generated request, valid or not, makes the API answer 500 (schemathesis, from OpenAPI)."""

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from support.chaos import eventually
from support.mail import smtp_server
from support.service import (
    RunningService,
    TicketingService,
    feedback_service,
    notifications_service,
    sla_service,
    ticketing_service,
)

EXAMPLES = 20


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def test_generated_requests_never_get_a_server_error(
    service: TicketingService, tmp_path: Path
) -> None:
    await _fuzz(service, tmp_path)


async def test_generated_requests_never_get_a_server_error_from_sla(
    sla_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with sla_service(sla_database_url, kafka_bootstrap) as sla:
        await _fuzz(sla, tmp_path)


async def _fuzz(service: RunningService[Any], tmp_path: Path) -> None:
    token = service.auth(role="admin")["Authorization"]
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis), "run", f"{service.base_url}/openapi.json",
        "--header", f"Authorization: {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
        "--max-examples", str(EXAMPLES),
        "--exclude-path", "/v1/stream",  # an endless response by design
        "--seed", "20261124",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-4000:]
    assert " passed" in report


async def test_generated_requests_never_get_a_server_error_from_notifications(
    notifications_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with (
        smtp_server() as mailbox,
        notifications_service(
            notifications_database_url, kafka_bootstrap, mailbox.port
        ) as notifications,
    ):

        async def ready() -> bool:  # its key replica has caught up with the keys topic
            return (await notifications.client.get("/health/ready")).status_code == 200

        await eventually(ready, timeout_s=120)
        await _fuzz(notifications, tmp_path)


async def test_generated_requests_never_get_a_server_error_from_feedback(
    feedback_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with feedback_service(
        feedback_database_url, kafka_bootstrap,
        # Every generated request comes from one address: the survey page's limits would
        # answer 429 long before the schema is covered.
        page_views_per_minute=100_000, page_posts_per_minute=100_000,
    ) as feedback:  # fmt: skip
        await _fuzz(feedback, tmp_path)
