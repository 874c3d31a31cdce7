"""The same command line for every service: `python -m <service> serve|migrate|token|…`.

    serve     run the service (the default); PARTS chooses api, consumers and/or jobs
    migrate   apply the database migrations and exit (safe to run twice, or from several
              processes at once: a Kubernetes init job)
    token     print a development bearer token signed with JWT_SECRET

A service adds its own commands (ticketing: rebuild, tenants), which run with a migrated
database.
"""

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import asyncpg
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from helpdesk_runtime import tenancy
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.logging import configure_logging, get_logger
from helpdesk_runtime.service import ServiceRuntime
from helpdesk_runtime.settings import ServiceSettings
from helpdesk_runtime.tokens import mint

S = TypeVar("S", bound=ServiceSettings)

log = get_logger(__name__)


@dataclass(frozen=True)
class Command(Generic[S]):
    """A service's own subcommand; `run` gets the parsed arguments and a migrated pool."""

    name: str
    help: str
    run: Callable[[S, argparse.Namespace, asyncpg.Pool], Awaitable[None]]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda _: None


@dataclass(frozen=True)
class ServiceCli(Generic[S]):
    """What the runtime needs to know of a service to give it its command line."""

    name: str
    settings: Callable[[], S]
    runtime: Callable[[S], ServiceRuntime]
    app: Callable[[S], FastAPI]
    commands: Sequence[Command[S]] = field(default_factory=tuple)

    def main(self, argv: list[str] | None = None) -> int:
        """Parse `argv` and run the chosen command; the process's exit status."""
        parser = argparse.ArgumentParser(
            prog=self.name, description=__doc__, formatter_class=argparse.RawTextHelpFormatter
        )
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("serve", help="run the service (the default)")
        sub.add_parser("migrate", help="apply the database migrations and exit")
        token = sub.add_parser("token", help="print a development bearer token")
        _token_arguments(token)
        own = {}
        for command in self.commands:
            own[command.name] = command
            command.arguments(sub.add_parser(command.name, help=command.help))
        args = parser.parse_args(argv)

        if args.command == "token":
            return _print_token(token, args, self.settings)
        settings = self.settings()
        if args.command in (None, "serve"):
            self._serve(settings)
            return 0
        configure_logging(settings.service_name, settings.log_level, settings.log_format)
        asyncio.run(self._with_database(settings, own.get(args.command), args))
        return 0

    def _serve(self, settings: S) -> None:
        uvicorn.run(
            self.app(settings),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,  # our structlog configuration owns the root logger
            access_log=settings.http_access_log,
            timeout_graceful_shutdown=max(1, int(settings.http_shutdown_s)),
        )

    async def _with_database(
        self, settings: S, command: Command[S] | None, args: argparse.Namespace
    ) -> None:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            applied = await self.runtime(settings).migrate(pool)
            if command is None:  # `migrate` itself
                log.info("database migrated", applied=applied or "nothing new")
                return
            with tenancy.all_tenants():  # an operator's tool: every tenant
                await command.run(settings, args, pool)
        finally:
            await pool.close()


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the `token` command."""
    parser.add_argument("--tenant", required=True, help="tenant id, e.g. acme")
    parser.add_argument("--agent", required=True, help="agent id (the sub claim)")
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
    parser.add_argument("--name", help="the agent's display name")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")


def _print_token(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    settings: Callable[[], ServiceSettings],
) -> int:
    """Print a development token; 0 on success, 2 on bad input or settings."""
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    try:
        principal = Principal(args.tenant, args.agent, Role(args.role), args.name)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        configured = settings()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        print(f"{parser.prog}: error: invalid settings: {problems}", file=sys.stderr)
        return 2
    if configured.jwt_secret is None:
        print(
            f"{parser.prog}: error: JWT_SECRET is not set; this service verifies tokens with "
            "JWT_PUBLIC_KEY or JWT_JWKS_URL, so get tokens from that issuer instead",
            file=sys.stderr,
        )
        return 2
    print(mint(configured, principal, args.ttl))
    return 0
