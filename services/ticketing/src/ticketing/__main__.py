"""`python -m ticketing [serve]` runs the service; `python -m ticketing rebuild` refolds views."""

import argparse
import asyncio

import uvicorn

from helpdesk_runtime.db import create_pool, load_migrations, migrate, runtime_migrations
from helpdesk_runtime.logging import configure_logging, get_logger
from ticketing.bootstrap import create_app
from ticketing.config import Settings
from ticketing.projection import rebuild


def serve(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our structlog configuration owns the root logger
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


async def rebuild_views(settings: Settings) -> int:
    """Drop the ticket list and fold it again from the event log."""
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        await migrate(pool, [*runtime_migrations(), *load_migrations("ticketing", "ticketing")])
        return await rebuild(pool)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ticketing", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "rebuild"])
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        serve(settings)
        return
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    tickets = asyncio.run(rebuild_views(settings))
    get_logger(__name__).info("ticket list rebuilt from the event log", tickets=tickets)


if __name__ == "__main__":
    main()
