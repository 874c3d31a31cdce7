"""Markers follow the folder a test lives in: tests/unit, tests/integration, tests/e2e."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpdesk_runtime import tenancy

pytest_plugins = ["support.fixtures"]

_TIERS = {
    "unit": "unit",
    "integration": "integration",
    "e2e": "e2e",
    "chaos": "chaos",
    "benchmarks": "benchmark",
}
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = _TIERS.get(Path(item.path).relative_to(_HERE).parts[0])
        if tier is None:
            raise pytest.UsageError(f"{item.nodeid}: tests live under {sorted(_TIERS)}")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def every_tenant() -> Iterator[None]:
    """Tests arrange and inspect any tenant's rows. The code under test narrows the scope
    itself (a request to its caller's tenant, a consumer's batch to its tenants); the
    services of the e2e tests, in processes of their own or served in a context of their
    own (support/service.py), start with no tenant at all, as in production."""
    with tenancy.all_tenants():
        yield
