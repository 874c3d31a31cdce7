"""`helpdesk`: the operators' command line.

It talks to the deployment the way an operator may: to Kafka (admin, consumer and producer
clients), to the services' HTTP APIs with a bearer token, and, for what only a service's
own command line does (registering a tenant, replaying projections), it runs that
command, locally or through `kubectl exec` (helpdesk_ops.ticketing_cli, .rebuild). It
imports no service's code, so it can be installed on an operator's laptop or a toolbox
pod without the services' dependencies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from helpdesk_ops import dead_letters, lag, rebuild, services_api, ticketing_cli

app = typer.Typer(
    name="helpdesk",
    help="Operate a helpdesk deployment: consumer lag, dead letters, projection rebuilds, "
    "tenants, SLA configuration and erasure. Every command explains itself with --help.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(
    help="Dead letters: records consumers could not use (the `<topic>.dlq` topics) and "
    "notifications that could not be delivered.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
tenant_app = typer.Typer(
    help="The tenants this deployment serves.", no_args_is_help=True, rich_markup_mode="markdown"
)
sla_app = typer.Typer(
    help="SLA policies and business calendars.", no_args_is_help=True, rich_markup_mode="markdown"
)
customer_app = typer.Typer(
    help="Customers' personal data.", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(dlq_app, name="dead-letters")
app.add_typer(tenant_app, name="tenant")
app.add_typer(sla_app, name="sla")
app.add_typer(customer_app, name="customer")

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages whole, for logs and grep

Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers (host:port[,host:port]). To sign in, set the services'"
        " own KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,"
        " KAFKA_SASL_PASSWORD and KAFKA_SSL_CAFILE.",
    ),
]  # fmt: skip
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts, not a table.")]
Token = Annotated[
    str,
    typer.Option(
        "--token", envvar="HELPDESK_TOKEN", show_default=False,
        help="Bearer token of a supervisor or admin of the tenant (HELPDESK_TOKEN).",
    ),
]  # fmt: skip
NotificationsUrl = Annotated[
    str,
    typer.Option(
        "--url", envvar="HELPDESK_NOTIFICATIONS_URL",
        help="The notifications service's base URL.",
    ),
]  # fmt: skip
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code=1)


def _on_kafka(bootstrap: str, work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work on the brokers; a broker that refuses or cannot be reached is an
    error line (sign-in: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*), not a traceback."""
    try:
        return asyncio.run(work)
    except KafkaError as exc:
        raise _fail(
            f"Kafka at {bootstrap}: {type(exc).__name__}: {exc} (is it reachable, and do"
            " KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_* match its listener?)"
        ) from exc


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


@app.command("lag")
def lag_command(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", "-g", help="Only groups matching this shell pattern (repeat)."),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="Only this service's groups (repeat)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Consumer lag and event age per service, consumer group and topic.

    Lag is how many records a group has yet to read (end offset minus committed offset);
    age is how long the oldest of them has waited (now minus the timestamp of the record
    at the committed offset). Watch age during a spike: a large lag of fresh records is
    fine, old records mean late SLA verdicts and late notifications."""
    rows = _on_kafka(
        bootstrap, lag.consumer_lag(bootstrap, groups=group or None, services=service or None)
    )
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    table = Table(title="Consumer lag")
    for name in ("service", "group", "topic"):
        table.add_column(name)
    for name in ("partitions", "lag", "oldest"):
        table.add_column(name, justify="right")
    for r in rows:
        style = "red" if (r.oldest_age_s or 0) > 300 else None
        table.add_row(r.service, r.group, r.topic, str(len(r.partitions)), f"{r.lag:,}",
                      _age(r.oldest_age_s), style=style)  # fmt: skip
    console.print(table)


@dlq_app.command("list")
def dlq_list(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    topic: Annotated[
        str | None,
        typer.Option("--topic", "-t", help="One topic (its name or its .dlq's); else all."),
    ] = None,
    latest: Annotated[int, typer.Option(help="How many of the latest to show per topic.")] = 10,
    as_json: AsJson = False,
) -> None:
    """What sits on the `.dlq` topics: a count per topic and the latest records, with the
    consumer that gave up on each, its error type and reason (the dlq-* headers)."""
    summaries = _on_kafka(
        bootstrap, dead_letters.list_dead_letters(bootstrap, topic=topic, latest=latest)
    )
    if as_json:
        typer.echo(json.dumps([{"topic": s.topic, "count": s.count,
                                "latest": [x.as_json() for x in s.latest]}
                               for s in summaries], indent=2))  # fmt: skip
        return
    counts = Table(title="Dead-letter topics")
    counts.add_column("topic")
    counts.add_column("records", justify="right")
    for s in summaries:
        counts.add_row(s.topic, f"{s.count:,}", style="red" if s.count else None)
    console.print(counts)
    for s in summaries:
        if not s.latest:
            continue
        table = Table(title=f"Latest on {s.topic}")
        for column in ("partition:offset", "dead-lettered", "consumer", "error type", "reason"):
            table.add_column(column)
        for x in s.latest:
            at = x.timestamp.isoformat(timespec="seconds")
            table.add_row(f"{x.partition}:{x.offset}", at, x.consumer or "-",
                          x.error_type or "-", (x.reason or "-")[:200])  # fmt: skip
        console.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    topic: Annotated[
        str,
        typer.Option(
            "--topic",
            "-t",
            help="The topic (or its .dlq) whose dead letters to publish again.",
            show_default=False,
        ),
    ],
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    since: Annotated[
        str | None,
        typer.Option(help="Only those dead-lettered since: 30m, 6h, 2d or an ISO 8601 time."),
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option("--consumer", help="Only those this consumer group gave up on."),
    ] = None,
    again: Annotated[
        bool,
        typer.Option("--again", help="Include what earlier redrives already published."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be published; publish nothing.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Publish dead letters again to the topic they came from, once their cause is fixed.

    Each goes back with its original key, value and headers (the dlq-* ones removed). A
    second run publishes only what was dead-lettered since the first (the progress is
    kept as the offsets of the consumer group `helpdesk-ops-redrive`), and a copy sent
    twice anyway is harmless: every consumer records each event id in its inbox in the
    transaction that applies it, and skips an id it has seen. A record that fails again
    lands on the .dlq once more, for a later run."""
    try:
        start = dead_letters.parse_since(since) if since else None
    except ValueError as exc:
        raise _fail(f"--since {since!r}: {exc}") from exc

    async def go() -> dead_letters.RedriveResult:
        plan = await dead_letters.plan_redrive(bootstrap, topic, since=start, again=again)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=errors, disable=as_json) as bar:  # fmt: skip
            verb = "reading" if dry_run else "re-driving"
            task = bar.add_task(f"{verb} {plan.dlq}", total=plan.total)
            return await dead_letters.redrive(
                bootstrap, plan, consumer_group=consumer, dry_run=dry_run,
                progress=lambda n: bar.advance(task, n),
            )  # fmt: skip

    try:
        result = _on_kafka(bootstrap, go())
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    summary = {"dlq": result.dlq, "read": result.read, "redriven": result.redriven,
               "skipped": result.skipped, "dry_run": result.dry_run}  # fmt: skip
    if as_json:
        if result.letters is not None:
            summary["letters"] = [x.as_json() for x in result.letters]
        typer.echo(json.dumps(summary, indent=2))
        return
    if result.letters is not None:
        table = Table(title=f"Would re-drive from {result.dlq}")
        for column in ("partition:offset", "to topic", "consumer", "error type", "reason"):
            table.add_column(column)
        for x in result.letters:
            table.add_row(f"{x.partition}:{x.offset}", x.source_topic, x.consumer or "-",
                          x.error_type or "-", (x.reason or "-")[:200])  # fmt: skip
        console.print(table)
        console.print(f"dry run: {len(result.letters)} would be re-driven, nothing published")
        return
    console.print(f"{result.redriven} re-driven from {result.dlq} ({result.skipped} skipped)")


@dlq_app.command("deliveries")
def dlq_deliveries(
    token: Token,
    url: NotificationsUrl = "http://127.0.0.1:8003",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: AsJson = False,
) -> None:
    """The notifications service's dead-letter deliveries (refused for good or out of
    retries) of the token's tenant, with their last error: `GET /v1/dead-letters`.
    Re-drive one with `helpdesk dead-letters redeliver` once the cause is fixed."""
    try:
        found = services_api.call(url, token, "GET", "/v1/dead-letters", params={"limit": limit})
    except services_api.ApiError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(title=f"Dead-letter deliveries ({len(found)})")
    for column in ("delivery", "created", "event", "channel", "attempts", "last error"):
        table.add_column(column)
    for d in found:
        table.add_row(d["delivery_id"], d["created_at"], d["event_type"], d["channel"],
                      str(d["attempts"]), (d.get("last_error") or "-")[:200])  # fmt: skip
    console.print(table)


@dlq_app.command("redeliver")
def dlq_redeliver(
    delivery_id: Annotated[str, typer.Argument(help="A dead delivery's id (from `deliveries`).")],
    token: Token,
    url: NotificationsUrl = "http://127.0.0.1:8003",
    as_json: AsJson = False,
) -> None:
    """Send one of the notifications service's dead-letter deliveries again, now, with a
    fresh set of retries (an admin's token; audited): `POST /v1/deliveries/{id}/redrive`.
    Refused unless the delivery is dead, so running it twice sends it once."""
    try:
        delivery = services_api.call(url, token, "POST", f"/v1/deliveries/{delivery_id}/redrive")
    except services_api.ApiError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(delivery, indent=2))
        return
    console.print(
        f"delivery {delivery['delivery_id']} is {delivery['state']} again: it goes out now"
    )


@app.command("rebuild")
def rebuild_command(
    service: Annotated[
        rebuild.Rebuildable,
        typer.Argument(
            help="The service whose projections to fold again: ticketing or sla.",
            show_default=False,
        ),
    ],
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="How to run the service's command line; in Kubernetes "
            '"kubectl exec -n helpdesk deploy/ticketing-jobs -- python -m ticketing". '
            "Else HELPDESK_<SERVICE>_COMMAND, else `python -m <service>` here.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replay a service's projections: fold its read models again from its own log.

    It runs the service's own `rebuild` (`python -m <service> rebuild`) where the
    service's settings are, and shows its log as it works. **ticketing** drops the ticket
    list and the customer directory and folds them again from the event log (erased
    customers stay erased); **sla** folds every SLA clock again from its input log of
    ticket events. Each is one transaction that truncates and refills its tables: their
    readers (the API, the consumers) wait until it commits, so run it off-peak; an
    interrupted rebuild changes nothing. Notifications and feedback have no
    rebuild command of their own (`python -m notifications --help` lists none), so there
    is nothing to run for them."""
    resolved = rebuild.command_for(service.value, command)
    errors.print(f"rebuilding {service.value}'s projections: {resolved} rebuild", highlight=False)
    try:
        rebuild.rebuild(resolved, echo=lambda line: errors.print(line, markup=False,
                                                                 highlight=False))  # fmt: skip
    except (ticketing_cli.CommandError, OSError) as exc:
        raise _fail(str(exc)) from exc
    errors.print(f"{service.value}'s projections rebuilt")


@tenant_app.command("create")
def tenant_create(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id, e.g. acme.")],
    name: Annotated[str, typer.Option(help="Its display name.", show_default=False)],
    admin: Annotated[
        str, typer.Option(help="The first admin's agent id (the token's sub).", show_default=False)
    ],
    admin_name: Annotated[str | None, typer.Option(help="The admin's display name.")] = None,
    ttl: Annotated[int, typer.Option(help="Seconds until the admin's token expires.")] = 86400,
    ticketing_command: Annotated[
        str,
        typer.Option(
            envvar="HELPDESK_TICKETING_COMMAND",
            help="How to run ticketing's command line; in Kubernetes "
            '"kubectl exec -n helpdesk deploy/ticketing-jobs -- python -m ticketing".',
        ),
    ] = ticketing_cli.DEFAULT_COMMAND,
) -> None:
    """Register a tenant and print its first admin's bearer token (on stdout, alone).

    There is no HTTP API for this (which tenant's token would be trusted to create
    tenants?): it runs ticketing's own `tenants add` and `token` commands where
    ticketing's settings are, locally or in the jobs Deployment's pod. Running it again
    renames the tenant and mints another token. The token is signed with JWT_SECRET; a
    deployment that checks tokens with an identity provider has none to sign with, and
    the admin gets theirs from the provider."""
    try:
        token = ticketing_cli.create_tenant(
            ticketing_command, tenant_id, name, admin, admin_name, ttl
        )
    except (ticketing_cli.CommandError, OSError) as exc:
        raise _fail(str(exc)) from exc
    errors.print(f"tenant {tenant_id} registered; the token of its admin {admin}:")
    typer.echo(token)


SlaUrl = Annotated[
    str, typer.Option("--url", envvar="HELPDESK_SLA_URL", help="The SLA service's base URL.")
]


_SLA_KINDS = (("calendars", "calendar_id"), ("policies", "policy_id"))
"""Calendars first: a policy names its calendar, which must exist when it is put."""


@sla_app.command("export")
def sla_export(
    token: Token,
    url: SlaUrl = "http://127.0.0.1:8002",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; else stdout.")
    ] = None,
) -> None:
    """The token's tenant's SLA business calendars and policies as JSON
    (`GET /v1/sla/calendars`, `GET /v1/sla/policies`): to keep under version control, or to
    copy to another tenant or deployment with `helpdesk sla import`."""
    try:
        data = {kind: [{"id": item[id_field], "spec": item["spec"]}
                       for item in services_api.call(url, token, "GET", f"/v1/sla/{kind}")]
                for kind, id_field in _SLA_KINDS}  # fmt: skip
    except services_api.ApiError as exc:
        raise _fail(str(exc)) from exc
    text = json.dumps(data, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n")


@sla_app.command("import")
def sla_import(
    source: Annotated[Path, typer.Argument(help="A file `helpdesk sla export` wrote.")],
    token: Token,
    url: SlaUrl = "http://127.0.0.1:8002",
) -> None:
    """Put the calendars, then the policies, of an export to the token's tenant (an
    admin's) with `PUT /v1/sla/{calendars|policies}/{id}`. Each put saves a new version
    (running clocks keep theirs), so what is already the same is left alone: a second
    run changes nothing."""
    data: dict[str, list[dict[str, Any]]] = json.loads(source.read_text())
    try:
        # An admin's token, refused at once otherwise: not only once there is a change to
        # save (the audit log is the one route every service keeps for admins alone).
        services_api.call(url, token, "GET", "/v1/audit", params={"limit": 1})
        for kind, id_field in _SLA_KINDS:
            listed = services_api.call(url, token, "GET", f"/v1/sla/{kind}")
            current = {item[id_field]: item["spec"] for item in listed}
            for item in data.get(kind, []):
                if current.get(item["id"]) == item["spec"]:
                    console.print(f"{kind} {item['id']}: unchanged")
                    continue
                services_api.call(url, token, "PUT", f"/v1/sla/{kind}/{item['id']}",
                                  json=item["spec"])  # fmt: skip
                console.print(f"{kind} {item['id']}: saved")
    except services_api.ApiError as exc:
        raise _fail(str(exc)) from exc


@customer_app.command("erase")
def customer_erase(
    customer_id: Annotated[str, typer.Argument(help="The customer's id in ticketing.")],
    token: Token,
    url: Annotated[
        str,
        typer.Option(
            "--url", envvar="HELPDESK_TICKETING_URL", help="The ticketing service's base URL."
        ),
    ] = "http://127.0.0.1:8001",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a customer for good (GDPR Art. 17, 152-FZ): `POST /v1/customers/{id}/erasure`
    with an admin's token. Their keys are destroyed, so every copy of their personal data
    (event log, topics, dead letters, backups) reads [erased]; tickets and statistics stay.
    It cannot be undone."""
    if not yes:
        typer.confirm(f"Erase customer {customer_id}? This cannot be undone", abort=True)
    try:
        record = services_api.call(url, token, "POST", f"/v1/customers/{customer_id}/erasure")
    except services_api.ApiError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(record, indent=2))


def main() -> None:
    """The console script `helpdesk`."""
    app()
