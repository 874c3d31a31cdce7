"""The runtime is tested on its own tables, without any service's."""

from collections.abc import AsyncIterator

import pytest

from helpdesk_runtime.db import runtime_migrations

from support.fixtures import template_with
from support.servers import Servers


@pytest.fixture(scope="session")
async def template_database(real_servers: Servers, service_role: str) -> AsyncIterator[str]:
    async for name in template_with(real_servers, service_role, runtime_migrations()):
        yield name
