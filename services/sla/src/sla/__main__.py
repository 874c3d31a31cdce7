"""The SLA service's command line: the runtime's commands (serve, migrate, token), plus

python -m sla rebuild    fold every clock again from the input log of ticket events
"""

import argparse
from datetime import UTC, datetime

import asyncpg

from helpdesk_runtime.cli import Command, ServiceCli
from helpdesk_runtime.logging import get_logger
from sla.bootstrap import build_runtime, create_app
from sla.config import Settings
from sla.configuration import Catalogue
from sla.handlers import SlaHandlers

log = get_logger(__name__)


async def _rebuild(_settings: Settings, _args: argparse.Namespace, pool: asyncpg.Pool) -> None:
    handlers = SlaHandlers(Catalogue(), lambda: datetime.now(UTC))
    async with pool.acquire() as conn, conn.transaction():
        done = await handlers.rebuild(conn)
    log.info("SLA clocks rebuilt from the input log", tickets=done)


cli = ServiceCli[Settings](
    name="sla",
    settings=Settings,
    runtime=build_runtime,
    app=create_app,
    commands=[Command("rebuild", "fold every clock again from the input log", _rebuild)],
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
