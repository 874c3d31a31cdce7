"""The rig of the notifications integration tests (support/notifying.py)."""

from collections.abc import AsyncIterator

import pytest

from support.notifying import Rig, rig_for


@pytest.fixture
async def rig(notifications_database_url: str) -> AsyncIterator[Rig]:
    async with rig_for(notifications_database_url) as made:
        yield made
