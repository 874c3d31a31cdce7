"""The notifications HTTP API: the delivery log per ticket and per recipient (agents), and
the dead letters with their re-drive (supervisors see them, admins re-drive)."""

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from helpdesk_contracts.directory import TimeZone
from helpdesk_contracts.values import Email, Language
from helpdesk_runtime import audit, tenancy
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import Connection
from helpdesk_runtime.http import RouteDeps
from helpdesk_runtime.problems import problem_responses
from helpdesk_runtime.timers import Timer, schedule_many
from notifications import store
from notifications.domain.notices import DEFAULT_RULES, Audience, Lane
from notifications.domain.preferences import Channel
from notifications.handlers import DELIVER
from notifications.rendering import BUILT_IN_LANGUAGES, Custom, Rendered, Templates
from notifications.samples import SAMPLES
from notifications.unsubscribe import OptOut, read_token

Recipient = Annotated[
    str,
    Path(pattern=r"^(customer|agent):[^\s]{1,200}$",
         description='Who: "customer:<customer id>" or "agent:<agent id>"'),
]  # fmt: skip
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first")]
GroupId = Annotated[str, Path(pattern=r"^[^\s]{1,200}$")]
EventType = Annotated[str, Path(pattern=r"^[A-Za-z]{1,100}$")]
AgentId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,100}$")]
MailboxAddress = Annotated[
    str, Path(max_length=254, pattern=r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$",
              description="A support address, e.g. support@acme.example")
]  # fmt: skip
TemplateName = Annotated[str, Path(pattern=r"^[a-z_]{1,100}$")]
TemplateLanguage = Annotated[str, Path(pattern=r"^[a-z]{2,3}$", description="e.g. en, ru")]
Token = Annotated[str, Path(max_length=2000, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
AddressHash = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
WebhookUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]


@dataclass(frozen=True)
class ApiDeps(RouteDeps):
    """Wired once, in bootstrap: every service's, and this one's."""

    unsubscribe_secret: bytes
    templates: Templates


class Attempt(BaseModel):
    attempt: int
    at: datetime
    outcome: str
    """sent, temporary (retried), permanent (refused for good) or cancelled."""
    detail: str | None


class Delivery(BaseModel):
    delivery_id: UUID
    """Stable per (event, recipient, channel); sent with the message (X-Helpdesk-Delivery-Id,
    Message-ID) so receivers can deduplicate."""
    event_id: UUID
    event_type: str
    ticket_id: UUID | None
    recipient: str
    channel: str
    template: str
    lane: str
    transactional: bool
    state: str
    """pending (queued or waiting to retry), sent, dead (a dead letter) or cancelled."""
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    history: list[Attempt]


class Contact(BaseModel):
    """A person's contact preferences. Agents keep their own; admins anyone's."""

    model_config = ConfigDict(extra="forbid")

    channels: Annotated[list[Channel], Field(min_length=1, max_length=3)] = [Channel.EMAIL]
    """Preferred first, then the fallbacks."""
    language: Language | None = None
    time_zone: TimeZone = "UTC"
    quiet_from: time | None = None
    quiet_until: time | None = None
    """Non-urgent messages falling between these (local times) wait for `quiet_until`."""
    opted_out: Annotated[list[Category], Field(max_length=50)] = []
    """Templates (categories) not wanted; messages answering the person's own request
    (the acknowledgement, replies, solved notices) are sent regardless."""
    email: Email | None = None
    webhook_url: WebhookUrl | None = None
    messenger_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    """The chat id the messenger adapter sends to."""

    @model_validator(mode="after")
    def _quiet_hours_whole(self) -> "Contact":
        # (Addresses of customers are refused by the route: see put_contact.)
        if (self.quiet_from is None) != (self.quiet_until is None):
            raise ValueError("quiet hours need both quiet_from and quiet_until")
        if self.quiet_from is not None and self.quiet_from == self.quiet_until:
            raise ValueError("quiet_from and quiet_until must differ")
        return self


class TemplateBody(BaseModel):
    """A template's three parts (Jinja2, sandboxed; the HTML part is autoescaped)."""

    model_config = ConfigDict(extra="forbid")

    subject: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    text: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    html: Annotated[str, StringConstraints(min_length=1, max_length=200_000)]


class TemplateView(TemplateBody):
    name: str
    language: str
    source: str
    """"tenant" (this tenant's own) or "built-in"."""


class TemplateRef(BaseModel):
    name: str
    language: str
    source: str


class PreviewRequest(BaseModel):
    """A draft to try (else the template as it is), with values that replace the sample's."""

    model_config = ConfigDict(extra="forbid")

    draft: TemplateBody | None = None
    context: dict[str, Any] = {}


class Preview(BaseModel):
    subject: str
    text: str
    html: str
    language: str
    source: str


class Mailbox(BaseModel):
    address: str


class Suppression(BaseModel):
    address_hash: str
    """SHA-256 of the lower-cased address (`DELETE /v1/suppressions/{address_hash}`)."""
    reason: str
    recipient: str | None
    delivery_id: UUID | None
    since: datetime


class RuleView(BaseModel):
    event_type: str
    audiences: list[Audience]
    template: str
    lane: str
    transactional: bool
    escalation: bool
    enabled: bool
    changed: bool
    """False: the documented default."""


class RuleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audiences: Annotated[list[Audience], Field(max_length=10)]
    enabled: bool = True


class GroupLeads(BaseModel):
    model_config = ConfigDict(extra="forbid")

    leads: Annotated[list[AgentId], Field(max_length=50)]


class Hours(BaseModel):
    """When the tenant's agents work: escalations (SLA warnings and breaches, negative
    feedback, customers at risk) wait for it unless their ticket is urgent (the default,
    unset: they never wait)."""

    model_config = ConfigDict(extra="forbid")

    time_zone: TimeZone
    days: Annotated[list[Annotated[int, Field(ge=0, le=6)]], Field(min_length=1, max_length=7)]
    """Weekdays, Monday = 0."""
    start: time
    end: time

    @model_validator(mode="after")
    def _a_day(self) -> "Hours":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def router(deps: ApiDeps) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["deliveries"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    @r.get("/tickets/{ticket_id}/deliveries", response_model=list[Delivery],
           responses=problem_responses(401, 403))  # fmt: skip
    async def ticket_deliveries(ticket_id: UUID, caller: Agent, limit: Limit = 100) -> Any:
        """What was sent about a ticket: to whom, when, through what, with what outcome."""
        async with deps.connection() as conn:
            return await _deliveries(conn, caller.tenant_id, "d.ticket_id = $2", ticket_id, limit)

    @r.get("/recipients/{recipient}/deliveries", response_model=list[Delivery],
           responses=problem_responses(401, 403))  # fmt: skip
    async def recipient_deliveries(recipient: Recipient, caller: Agent, limit: Limit = 100) -> Any:
        """What was sent to one person."""
        async with deps.connection() as conn:
            return await _deliveries(conn, caller.tenant_id, "d.recipient = $2", recipient, limit)

    @r.get("/deliveries/{delivery_id}", response_model=Delivery,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def one_delivery(delivery_id: UUID, caller: Agent) -> Any:
        async with deps.connection() as conn:
            found = await _deliveries(conn, caller.tenant_id, "d.delivery_id = $2", delivery_id, 1)
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no delivery {delivery_id}")
        return found[0]

    @r.get("/dead-letters", response_model=list[Delivery], responses=problem_responses(401, 403))
    async def dead_letters(caller: Supervisor, limit: Limit = 100) -> Any:
        """Deliveries refused for good or out of retries, with the reason: re-drive them
        once the cause is fixed (a corrected address, a provider back)."""
        async with deps.connection() as conn:
            return await _deliveries(conn, caller.tenant_id, "d.state = $2", "dead", limit)

    @r.post("/deliveries/{delivery_id}/redrive", response_model=Delivery,
            responses=problem_responses(401, 403, 404, 409))  # fmt: skip
    async def redrive(delivery_id: UUID, caller: Admin) -> Any:
        """Send a dead letter again, now, with a fresh set of retries."""
        async with deps.transaction() as conn:
            lane = await conn.fetchval(
                "UPDATE deliveries SET state = 'pending', redriven_at_attempt = attempts"
                " WHERE tenant_id = $1 AND delivery_id = $2 AND state = 'dead' RETURNING lane",
                caller.tenant_id, delivery_id,
            )  # fmt: skip
            if lane is None:
                found = await _deliveries(
                    conn, caller.tenant_id, "d.delivery_id = $2", delivery_id, 1
                )
                if not found:
                    raise HTTPException(
                        status.HTTP_404_NOT_FOUND, f"there is no delivery {delivery_id}"
                    )
                state = found[0].state
                raise HTTPException(
                    status.HTTP_409_CONFLICT, f"delivery {delivery_id} is {state}, not dead"
                )
            await schedule_many(conn, [Timer(DELIVER[Lane(lane)], str(delivery_id),
                                             caller.tenant_id, deps.clock(), {})])  # fmt: skip
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller, entity="delivery",
                               entity_id=str(delivery_id), action=Action.UPDATED,
                               before={"state": "dead"}, after={"state": "pending"})  # fmt: skip
            [delivery] = await _deliveries(
                conn, caller.tenant_id, "d.delivery_id = $2", delivery_id, 1
            )
        return delivery

    @r.get(
        "/contacts/{recipient}", response_model=Contact, responses=problem_responses(401, 403, 404)
    )
    async def get_contact(recipient: Recipient, caller: Agent) -> Any:
        _may_edit(caller, recipient, reading=True)
        async with deps.connection() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM contacts WHERE tenant_id = $1 AND person = $2",
                caller.tenant_id, recipient,
            )  # fmt: skip
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no preferences saved for {recipient}")
        return _contact(row)

    @r.put("/contacts/{recipient}", response_model=Contact, responses=problem_responses(401, 403))
    async def put_contact(recipient: Recipient, body: Contact, caller: Agent) -> Any:
        """Save a person's preferences: agents their own, admins anyone's (audited). A
        customer's addresses are not kept here: they come, sealed, with their tickets (and
        go when the customer is erased)."""
        _may_edit(caller, recipient)
        if recipient.startswith("customer:") and (
            body.email or body.webhook_url or body.messenger_id
        ):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "a customer's addresses come with their tickets and the directory; set their"
                " channels, language, time zone, quiet hours and opt-outs here",
            )
        async with deps.transaction() as conn:
            before = await conn.fetchrow(
                "SELECT * FROM contacts WHERE tenant_id = $1 AND person = $2 FOR UPDATE",
                caller.tenant_id, recipient,
            )  # fmt: skip
            await conn.execute(
                """
                INSERT INTO contacts (tenant_id, person, channels, language, time_zone,
                    quiet_from, quiet_until, opted_out, email, webhook_url, messenger_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (tenant_id, person) DO UPDATE SET channels = excluded.channels,
                    language = excluded.language, time_zone = excluded.time_zone,
                    quiet_from = excluded.quiet_from, quiet_until = excluded.quiet_until,
                    opted_out = excluded.opted_out, email = excluded.email,
                    webhook_url = excluded.webhook_url, messenger_id = excluded.messenger_id,
                    updated_at = now()
                """,
                caller.tenant_id, recipient, [c.value for c in body.channels], body.language,
                body.time_zone, body.quiet_from, body.quiet_until, body.opted_out, body.email,
                body.webhook_url, body.messenger_id,
            )  # fmt: skip
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="contact",
                entity_id=recipient, action=Action.UPDATED if before else Action.CREATED,
                before=_contact(before) if before else None, after=body,
            )  # fmt: skip
        return body

    @r.get("/rules", response_model=list[RuleView], responses=problem_responses(401, 403))
    async def list_rules(caller: Agent) -> Any:
        """Which event notifies whom: the defaults, with this tenant's changes."""
        async with deps.connection() as conn:
            effective = (await store.rules(conn, [caller.tenant_id]))[caller.tenant_id]
        return [_rule_view(rule, rule != DEFAULT_RULES[t]) for t, rule in effective.items()]

    @r.put("/rules/{event_type}", response_model=RuleView,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def put_rule(event_type: EventType, body: RuleChange, caller: Admin) -> Any:
        """Change whom an event notifies, or turn it off (audited)."""
        default = _default_rule(event_type)
        async with deps.transaction() as conn:
            before = (await store.rules(conn, [caller.tenant_id]))[caller.tenant_id][event_type]
            await conn.execute(
                "INSERT INTO rules (tenant_id, event_type, audiences, enabled)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, event_type) DO UPDATE"
                " SET audiences = excluded.audiences, enabled = excluded.enabled,"
                " updated_at = now()",
                caller.tenant_id, event_type, [a.value for a in body.audiences], body.enabled,
            )  # fmt: skip
            after = store.changed(default, [a.value for a in body.audiences], body.enabled)
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="notification_rule",
                entity_id=event_type, action=Action.UPDATED,
                before=_rule_view(before, before != default), after=_rule_view(after, True),
            )  # fmt: skip
        return _rule_view(after, after != default)

    @r.delete("/rules/{event_type}", response_model=RuleView,
              responses=problem_responses(401, 403, 404))  # fmt: skip
    async def reset_rule(event_type: EventType, caller: Admin) -> Any:
        """Back to the documented default (audited)."""
        default = _default_rule(event_type)
        async with deps.transaction() as conn:
            gone = await conn.fetchrow(
                "DELETE FROM rules WHERE tenant_id = $1 AND event_type = $2"
                " RETURNING audiences, enabled", caller.tenant_id, event_type,
            )  # fmt: skip
            if gone is not None:
                await audit.record(
                    conn, tenant_id=caller.tenant_id, actor=caller, entity="notification_rule",
                    entity_id=event_type, action=Action.DELETED, before=dict(gone),
                )  # fmt: skip
        return _rule_view(default, False)

    @r.get("/groups/{group_id}/leads", response_model=GroupLeads,
           responses=problem_responses(401, 403))  # fmt: skip
    async def get_leads(group_id: GroupId, caller: Agent) -> Any:
        async with deps.connection() as conn:
            leads = await conn.fetchval(
                "SELECT leads FROM group_leads WHERE tenant_id = $1 AND group_id = $2",
                caller.tenant_id, group_id,
            )  # fmt: skip
        return GroupLeads(leads=list(leads or []))

    @r.put("/groups/{group_id}/leads", response_model=GroupLeads,
           responses=problem_responses(401, 403))  # fmt: skip
    async def put_leads(group_id: GroupId, body: GroupLeads, caller: Admin) -> Any:
        """A group's team leads: they hear of SLA breaches and negative feedback in their
        group, and of customers at risk without an account manager whose latest ticket was
        the group's (audited)."""
        async with deps.transaction() as conn:
            before = await conn.fetchval(
                "SELECT leads FROM group_leads WHERE tenant_id = $1 AND group_id = $2",
                caller.tenant_id, group_id,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO group_leads (tenant_id, group_id, leads) VALUES ($1, $2, $3)"
                " ON CONFLICT (tenant_id, group_id) DO UPDATE SET leads = excluded.leads",
                caller.tenant_id, group_id, list(dict.fromkeys(body.leads)),
            )  # fmt: skip
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="group_leads",
                entity_id=group_id, action=Action.UPDATED,
                before={"leads": before} if before is not None else None, after=body,
            )  # fmt: skip
        return body

    @r.get("/business-hours", response_model=Hours | None, responses=problem_responses(401, 403))
    async def get_hours(caller: Agent) -> Any:
        async with deps.connection() as conn:
            hours = (await store.business_hours(conn, [caller.tenant_id])).get(caller.tenant_id)
        if hours is None:
            return None
        return Hours(time_zone=hours.time_zone, days=sorted(hours.days), start=hours.start,
                     end=hours.end)  # fmt: skip

    @r.put("/business-hours", response_model=Hours, responses=problem_responses(401, 403))
    async def put_hours(body: Hours, caller: Admin) -> Any:
        async with deps.transaction() as conn:
            await conn.execute(
                "INSERT INTO business_hours (tenant_id, time_zone, days, start_time, end_time)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET"
                " time_zone = excluded.time_zone, days = excluded.days,"
                " start_time = excluded.start_time, end_time = excluded.end_time",
                caller.tenant_id, body.time_zone, sorted(set(body.days)), body.start, body.end,
            )  # fmt: skip
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="business_hours",
                entity_id=caller.tenant_id, action=Action.UPDATED, after=body,
            )  # fmt: skip
        return body

    @r.get("/templates", response_model=list[TemplateRef], responses=problem_responses(401, 403))
    async def list_templates(caller: Agent) -> Any:
        """Every template name and language there is, and whose each one is."""
        async with deps.connection() as conn:
            own = (await store.templates(conn, [caller.tenant_id])).get(caller.tenant_id, {})
        refs = {(n, lang): "built-in" for n in SAMPLES for lang in BUILT_IN_LANGUAGES
                if deps.templates.builtin(n, lang) is not None}  # fmt: skip
        refs |= dict.fromkeys(own, "tenant")
        return [TemplateRef(name=n, language=lang, source=source)
                for (n, lang), source in sorted(refs.items())]  # fmt: skip

    @r.get("/templates/{name}/{language}", response_model=TemplateView,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def get_template(name: TemplateName, language: TemplateLanguage, caller: Agent) -> Any:
        found = await _effective(deps, caller.tenant_id, _known(name), language)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {name} template in {language}")
        body, source = found
        return TemplateView(name=name, language=language, source=source,
                            **body.model_dump())  # fmt: skip

    @r.put("/templates/{name}/{language}", response_model=TemplateView,
           responses=problem_responses(401, 403, 404, 422))  # fmt: skip
    async def put_template(
        name: TemplateName, language: TemplateLanguage, body: TemplateBody, caller: Admin
    ) -> Any:
        """This tenant's own template for a name and language (audited). It must render
        with the variables its messages have (the preview's sample), or it is refused."""
        _try(deps.templates, _known(name), language, body, {})
        async with deps.transaction() as conn:
            before = await _effective(deps, caller.tenant_id, name, language, conn=conn)
            await conn.execute(
                "INSERT INTO templates (tenant_id, name, language, subject, text, html,"
                " updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (tenant_id, name, language) DO UPDATE SET subject ="
                " excluded.subject, text = excluded.text, html = excluded.html,"
                " updated_by = excluded.updated_by, updated_at = now()",
                caller.tenant_id, name, language, body.subject, body.text, body.html,
                caller.agent_id,
            )  # fmt: skip
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="template",
                entity_id=f"{name}/{language}", action=Action.UPDATED,
                before=before[0] if before and before[1] == "tenant" else None, after=body,
            )  # fmt: skip
        return TemplateView(name=name, language=language, source="tenant", **body.model_dump())

    @r.delete("/templates/{name}/{language}", status_code=204,
              responses=problem_responses(401, 403, 404))  # fmt: skip
    async def reset_template(name: TemplateName, language: TemplateLanguage, caller: Admin) -> None:
        """Back to the built-in template (audited)."""
        async with deps.transaction() as conn:
            gone = await conn.fetchrow(
                "DELETE FROM templates WHERE tenant_id = $1 AND name = $2 AND language = $3"
                " RETURNING subject, text, html", caller.tenant_id, _known(name), language,
            )  # fmt: skip
            if gone is None:
                why = f"this tenant has no {name} template in {language}"
                raise HTTPException(status.HTTP_404_NOT_FOUND, why)
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller,
                               entity="template", entity_id=f"{name}/{language}",
                               action=Action.DELETED, before=dict(gone))  # fmt: skip

    @r.post("/templates/{name}/{language}/preview", response_model=Preview,
            responses=problem_responses(401, 403, 404, 422))  # fmt: skip
    async def preview(
        name: TemplateName, language: TemplateLanguage, body: PreviewRequest, caller: Admin
    ) -> Any:
        """The message a template (or a draft) makes, from sample values (or yours)."""
        draft = body.draft
        if draft is None:
            found = await _effective(deps, caller.tenant_id, _known(name), language)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {name} template in {language}")
            draft = found[0]
        rendered = _try(deps.templates, _known(name), language, draft, body.context)
        return Preview(subject=rendered.subject, text=rendered.text, html=rendered.html,
                       language=language, source="draft" if body.draft else "template")  # fmt: skip

    @r.get("/mailboxes", response_model=list[Mailbox], responses=problem_responses(401, 403))
    async def list_mailboxes(caller: Admin) -> Any:
        """The support addresses whose mail opens this tenant's tickets."""
        async with deps.connection() as conn:
            rows = await conn.fetch(
                "SELECT address FROM mailboxes WHERE tenant_id = $1 ORDER BY address",
                caller.tenant_id,
            )  # fmt: skip
        return [Mailbox(address=r["address"]) for r in rows]

    @r.put("/mailboxes/{address}", response_model=Mailbox,
           responses=problem_responses(401, 403, 409, 422))  # fmt: skip
    async def put_mailbox(address: MailboxAddress, caller: Admin) -> Any:
        """Mail to this address (routed to our inbound listener) opens tickets here (audited)."""
        address = address.lower()
        async with deps.transaction() as conn:
            # An address is unique across tenants; row-level security hides another
            # tenant's row, not the conflict: nothing inserted and none of ours is "taken".
            added = await conn.fetchval(
                "INSERT INTO mailboxes (address, tenant_id) VALUES ($1, $2)"
                " ON CONFLICT (address) DO NOTHING RETURNING address",
                address, caller.tenant_id,
            )  # fmt: skip
            if added is None:
                ours = await conn.fetchval(
                    "SELECT true FROM mailboxes WHERE tenant_id = $1 AND address = $2",
                    caller.tenant_id, address,
                )  # fmt: skip
                if not ours:
                    raise HTTPException(status.HTTP_409_CONFLICT, f"{address} is taken")
            else:
                await audit.record(
                    conn, tenant_id=caller.tenant_id, actor=caller, entity="mailbox",
                    entity_id=address, action=Action.CREATED,
                )  # fmt: skip
        return Mailbox(address=address)

    @r.delete("/mailboxes/{address}", status_code=204, responses=problem_responses(401, 403, 404))
    async def delete_mailbox(address: MailboxAddress, caller: Admin) -> None:
        async with deps.transaction() as conn:
            gone = await conn.fetchval(
                "DELETE FROM mailboxes WHERE tenant_id = $1 AND address = $2 RETURNING address",
                caller.tenant_id, address.lower(),
            )  # fmt: skip
            if gone is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"{address} is not a mailbox here")
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller, entity="mailbox",
                               entity_id=address.lower(), action=Action.DELETED)  # fmt: skip

    @r.get("/suppressions", response_model=list[Suppression],
           responses=problem_responses(401, 403))  # fmt: skip
    async def list_suppressions(caller: Supervisor, limit: Limit = 100) -> Any:
        """Addresses nothing is sent to (hard bounces, complaints), newest first. The
        address itself is not kept: the person and the delivery say whose it was."""
        async with deps.connection() as conn:
            rows = await conn.fetch(
                "SELECT address_hash, reason, recipient, delivery_id, since FROM suppressions"
                " WHERE tenant_id = $1 ORDER BY since DESC LIMIT $2", caller.tenant_id, limit,
            )  # fmt: skip
        return [Suppression.model_validate(dict(r)) for r in rows]

    @r.delete("/suppressions/{address_hash}", status_code=204,
              responses=problem_responses(401, 403, 404))  # fmt: skip
    async def lift_suppression(address_hash: AddressHash, caller: Admin) -> None:
        """The address is fixed (or the complaint withdrawn): send to it again (audited)."""
        async with deps.transaction() as conn:
            gone = await conn.fetchrow(
                "DELETE FROM suppressions WHERE tenant_id = $1 AND address_hash = $2"
                " RETURNING reason, recipient", caller.tenant_id, address_hash,
            )  # fmt: skip
            if gone is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such suppression")
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller,
                               entity="suppression", entity_id=address_hash,
                               action=Action.DELETED, before=dict(gone))  # fmt: skip

    return r


def _known(name: str) -> str:
    if name not in SAMPLES:
        known = ", ".join(sorted(SAMPLES))
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no template {name!r}; there are {known}")
    return name


def _try(
    templates: Templates, name: str, language: str, body: TemplateBody, values: dict[str, Any]
) -> Rendered:
    """The template rendered with the sample (and `values`), or a 422 saying why not."""
    custom = Custom(body.subject, body.text, body.html)
    try:
        return templates.preview(custom, {**SAMPLES[name], **values}, language)
    except Exception as exc:  # TemplateError, or what the template's code raised
        where = f" (line {exc.lineno})" if isinstance(exc, TemplateSyntaxError) else ""
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"the template does not render{where}: {exc}") from None  # fmt: skip


async def _effective(
    deps: ApiDeps, tenant: str, name: str, language: str, conn: "Connection | None" = None
) -> tuple[TemplateBody, str] | None:
    async with AsyncExitStack() as stack:
        if conn is None:
            conn = await stack.enter_async_context(deps.connection())
        own = (await store.templates(conn, [tenant])).get(tenant, {}).get((name, language))
    if own is not None:
        return TemplateBody(subject=own.subject, text=own.text, html=own.html), "tenant"
    built = deps.templates.builtin(name, language)
    if built is None:
        return None
    return TemplateBody(subject=built.subject, text=built.text, html=built.html), "built-in"


def _may_edit(caller: Principal, recipient: str, *, reading: bool = False) -> None:
    own = recipient == f"agent:{caller.agent_id}"
    if (
        own
        or caller.role.at_least(Role.ADMIN)
        or (reading and caller.role.at_least(Role.SUPERVISOR))
    ):
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, "agents keep their own preferences; admins anyone's"
    )


def _contact(row: Any) -> Contact:
    return Contact.model_validate({k: row[k] for k in Contact.model_fields})


def _default_rule(event_type: str) -> Any:
    default = DEFAULT_RULES.get(event_type)
    if default is None:
        known = ", ".join(sorted(DEFAULT_RULES))
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no rule for {event_type}; rules exist for {known}")  # fmt: skip
    return default


def _rule_view(rule: Any, changed: bool) -> RuleView:
    return RuleView(
        event_type=rule.event_type, audiences=list(rule.audiences), template=rule.template,
        lane=rule.lane.value, transactional=rule.transactional, escalation=rule.escalation,
        enabled=rule.enabled, changed=changed,
    )  # fmt: skip


async def _deliveries(
    conn: Connection, tenant_id: str, where: str, value: Any, limit: int
) -> list[Delivery]:
    rows = await conn.fetch(
        f"""
        SELECT d.delivery_id, d.event_id, d.event_type, d.ticket_id, d.recipient, d.channel,
               d.template, d.lane, d.transactional, d.state, d.attempts, d.last_error,
               d.created_at, d.sent_at,
               coalesce((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at,
                    'outcome', a.outcome, 'detail', a.detail) ORDER BY a.attempt)
                 FROM delivery_attempts a
                 WHERE a.tenant_id = d.tenant_id AND a.delivery_id = d.delivery_id), '[]')::text
                 AS history
        FROM deliveries d WHERE d.tenant_id = $1 AND {where}
        ORDER BY d.created_at DESC LIMIT $3
        """,
        tenant_id, value, limit,
    )  # fmt: skip
    return [
        Delivery.model_validate({**dict(r), "history": _HISTORY.validate_json(r["history"])})
        for r in rows
    ]


_HISTORY = TypeAdapter(list[Attempt])


_PAGES = Environment(loader=PackageLoader("notifications", "templates"), autoescape=True)
_CATEGORY_NAMES = {"survey_invitation": "survey invitations",
                   "negative_feedback": "alerts on negative feedback",
                   "customer_at_risk": "alerts on customers at risk"}  # fmt: skip


def public_router(deps: ApiDeps) -> APIRouter:
    """The pages a mail's one-click unsubscribe link reaches: no sign-in, the signed token
    says who and what (unsubscribe.py)."""
    r = APIRouter(prefix="/v1/unsubscribe", tags=["unsubscribe"])

    def page(opt_out: OptOut, token: str, done: bool) -> HTMLResponse:
        what = _CATEGORY_NAMES.get(opt_out.category, opt_out.category.replace("_", " "))
        html = _PAGES.get_template("pages/unsubscribe.html").render(
            what=what, token=token, done=done
        )
        return HTMLResponse(html)

    def read(token: str) -> OptOut:
        opt_out = read_token(deps.unsubscribe_secret, token)
        if opt_out is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this unsubscribe link is not valid")
        return opt_out

    @r.get("/{token}", response_class=HTMLResponse, responses=problem_responses(404))
    async def confirm(token: Token) -> Any:
        """A page with a button: opening the link (as mail scanners do) changes nothing."""
        return page(read(token), token, done=False)

    @r.post("/{token}", response_class=HTMLResponse, responses=problem_responses(404))
    async def unsubscribe(
        token: Token,
        one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
    ) -> Any:
        """RFC 8058 one-click (`List-Unsubscribe=One-Click`), or the page's button."""
        del one_click  # what a mail system posts; the token alone says what to do
        opt_out = read(token)
        with tenancy.scoped_to([opt_out.tenant_id]):
            async with deps.transaction() as conn:
                await conn.execute(
                    "INSERT INTO contacts (tenant_id, person, opted_out) VALUES ($1, $2, $3)"
                    " ON CONFLICT (tenant_id, person) DO UPDATE SET opted_out = ARRAY("
                    "SELECT DISTINCT unnest(contacts.opted_out || excluded.opted_out)),"
                    " updated_at = now()",
                    opt_out.tenant_id, opt_out.person, [opt_out.category],
                )  # fmt: skip
                await audit.record(
                    conn, tenant_id=opt_out.tenant_id, actor=opt_out.person, entity="contact",
                    entity_id=opt_out.person, action=Action.UPDATED,
                    after={"opted_out": opt_out.category, "by": "unsubscribe link"},
                )  # fmt: skip
        return page(opt_out, token, done=True)

    return r
