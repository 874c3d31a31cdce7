"""The ticketing service's command line.

python -m ticketing [serve]                  run the service
python -m ticketing rebuild                  fold the ticket list again from the event log
python -m ticketing tenants add ID --name N  register a tenant (intake refuses others)
python -m ticketing tenants list
"""

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import uvicorn
from pydantic import TypeAdapter, ValidationError

from helpdesk_contracts import TenantId
from helpdesk_runtime.db import create_pool, load_migrations, migrate, runtime_migrations
from helpdesk_runtime.logging import configure_logging, get_logger
from ticketing import tenants
from ticketing.bootstrap import create_app
from ticketing.config import Settings
from ticketing.projection import rebuild

T = TypeVar("T")


def serve(settings: Settings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our structlog configuration owns the root logger
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


async def _with_database(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        await migrate(pool, [*runtime_migrations(), *load_migrations("ticketing", "ticketing")])
        return await work(pool)
    finally:
        await pool.close()


async def _add_tenant(pool: asyncpg.Pool, tenant_id: str, name: str) -> None:
    async with pool.acquire() as conn:
        await tenants.add(conn, tenant_id, name)


async def _list_tenants(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    async with pool.acquire() as conn:
        return await tenants.all_of(conn)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ticketing", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the service (the default)")
    commands.add_parser("rebuild", help="fold the ticket list again from the event log")
    tenant = commands.add_parser("tenants", help="the tenants this deployment serves")
    tenant_commands = tenant.add_subparsers(dest="action", required=True)
    adding = tenant_commands.add_parser("add", help="register a tenant")
    adding.add_argument("tenant_id", type=_tenant_id)
    adding.add_argument("--name", required=True)
    tenant_commands.add_parser("list", help="list the tenants")
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command in (None, "serve"):
        serve(settings)
        return
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    log = get_logger(__name__)
    if args.command == "rebuild":
        done = asyncio.run(_with_database(settings, rebuild))
        log.info("ticket list rebuilt from the event log", tickets=done)
    elif args.action == "add":
        asyncio.run(_with_database(settings, lambda p: _add_tenant(p, args.tenant_id, args.name)))
        log.info("tenant registered", tenant_id=args.tenant_id)
    else:
        for tenant_id, name in asyncio.run(_with_database(settings, _list_tenants)):
            print(f"{tenant_id}\t{name}")


def _tenant_id(value: str) -> str:
    try:
        return TypeAdapter(TenantId).validate_python(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a tenant id") from exc


if __name__ == "__main__":
    main()
