"""The ticketing service's command line: the runtime's commands, plus

python -m ticketing rebuild                  fold the list and the directory again from the events
python -m ticketing tenants add ID --name N  register a tenant (intake refuses others)
python -m ticketing tenants suspend ID        refuse its tokens and intake (its data stays)
python -m ticketing tenants resume ID
python -m ticketing tenants list
"""

import argparse
import getpass

import asyncpg
from pydantic import TypeAdapter, ValidationError

from helpdesk_contracts import PLATFORM_TENANT, TenantId
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.cli import Command, ServiceCli
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys
from ticketing import tenants
from ticketing.bootstrap import build_runtime, create_app
from ticketing.config import Settings
from ticketing.projection import rebuild

log = get_logger(__name__)


async def _rebuild(settings: Settings, _args: argparse.Namespace, pool: asyncpg.Pool) -> None:
    done = await rebuild(pool, SubjectKeys(settings.key_ring()))
    log.info("ticket list and directory rebuilt from the event log", streams=done)


async def _tenants(_settings: Settings, args: argparse.Namespace, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        if args.action == "add":
            async with conn.transaction():
                before = dict(await tenants.all_of(conn)).get(args.tenant_id)
                await tenants.add(conn, args.tenant_id, args.name)
                await audit.record(
                    conn, tenant_id=args.tenant_id, actor=f"ops:{getpass.getuser()}",
                    entity="tenant", entity_id=args.tenant_id,
                    action=Action.UPDATED if before else Action.CREATED,
                    before={"name": before} if before else None, after={"name": args.name},
                )  # fmt: skip
            log.info("tenant registered", tenant_id=args.tenant_id)
        elif args.action in ("suspend", "resume"):
            suspended = args.action == "suspend"
            async with conn.transaction():
                if not await tenants.suspend(conn, args.tenant_id, suspended):
                    raise SystemExit(f"tenant {args.tenant_id!r} is not registered")
                await audit.record(
                    conn, tenant_id=args.tenant_id, actor=f"ops:{getpass.getuser()}",
                    entity="tenant", entity_id=args.tenant_id, action=Action.UPDATED,
                    before={"suspended": not suspended}, after={"suspended": suspended},
                )  # fmt: skip
            log.info(f"tenant {args.action}d", tenant_id=args.tenant_id)
        else:
            for tenant_id, name in await tenants.all_of(conn):
                print(f"{tenant_id}\t{name}")


def _tenant_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    adding = actions.add_parser("add", help="register a tenant")
    adding.add_argument("tenant_id", type=_tenant_id)
    adding.add_argument("--name", required=True)
    for action, what in (("suspend", "refuse its tokens and intake"), ("resume", "undo that")):
        actions.add_parser(action, help=what).add_argument("tenant_id", type=_tenant_id)
    actions.add_parser("list", help="list the tenants")


def _tenant_id(value: str) -> str:
    if value == PLATFORM_TENANT:
        raise argparse.ArgumentTypeError(f"{value!r} is reserved for the platform's own records")
    try:
        return TypeAdapter(TenantId).validate_python(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a tenant id") from exc


cli = ServiceCli[Settings](
    name="ticketing",
    settings=Settings,
    runtime=build_runtime,
    app=create_app,
    commands=[
        Command("rebuild", "fold the ticket list again from the event log", _rebuild),
        Command("tenants", "the tenants this deployment serves", _tenants, _tenant_arguments),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
