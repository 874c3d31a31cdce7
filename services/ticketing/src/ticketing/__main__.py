"""The ticketing service's command line: the runtime's commands, plus

python -m ticketing rebuild                  fold the list and the directory again from the events
python -m ticketing tenants add ID --name N  register a tenant (intake refuses others)
python -m ticketing tenants suspend ID        refuse its tokens and intake (its data stays)
python -m ticketing tenants resume ID
python -m ticketing tenants list
python -m ticketing publishers allow|deny P T  the tenants outside publisher P opens tickets for
python -m ticketing publishers list
python -m ticketing keys rewrap              a new master key version wraps every subject key
"""

import argparse
import getpass

import asyncpg
from pydantic import TypeAdapter, ValidationError

from helpdesk_contracts import PLATFORM_TENANT, TenantId, publisher_intake_topic
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.cli import Command, ServiceCli
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys, rewrap_all
from ticketing import publishers, tenants
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


async def _publishers(_settings: Settings, args: argparse.Namespace, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        if args.action == "list":
            for publisher, tenant_id in await publishers.all_of(conn):
                print(f"{publisher}\t{tenant_id}")
            return
        async with conn.transaction():
            if args.action == "allow":
                await publishers.allow(conn, args.publisher, args.tenant_id)
            elif not await publishers.deny(conn, args.publisher, args.tenant_id):
                raise SystemExit(f"{args.publisher!r} was not allowed {args.tenant_id!r}")
            await audit.record(
                conn, tenant_id=args.tenant_id, actor=f"ops:{getpass.getuser()}",
                entity="publisher", entity_id=args.publisher, action=Action.UPDATED,
                before=None, after={"may_publish": args.action == "allow"},
            )  # fmt: skip
        log.info(f"publisher {args.action}ed", publisher=args.publisher, tenant_id=args.tenant_id)


def _publisher_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    for action, what in (("allow", "may open tickets for the tenant"), ("deny", "may not")):
        sub = actions.add_parser(action, help=what)
        sub.add_argument("publisher", type=_publisher)
        sub.add_argument("tenant_id", type=_tenant_id)
    actions.add_parser("list", help="the publishers and their tenants")


def _publisher(value: str) -> str:
    try:
        publisher_intake_topic(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


async def _keys(settings: Settings, _args: argparse.Namespace, pool: asyncpg.Pool) -> None:
    ring = settings.key_ring()
    done = await rewrap_all(pool, ring)
    log.info("subject keys rewrapped", keys=done, master_version=ring.current)


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("rewrap", help="wrap every subject key under the newest master key")


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
        Command("publishers", "outside publishers' tenants", _publishers, _publisher_arguments),
        Command("keys", "the master keys of personal data", _keys, _key_arguments),
    ],
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
