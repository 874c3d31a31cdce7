"""The agents' HTTP API (thin: parse, call a handler, shape the answer)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    Organisation,
    Priority,
    Requester,
    TenantId,
    TicketType,
)
from helpdesk_runtime.eventstore import ConcurrencyError, PostgresEventStore
from helpdesk_runtime.http import correlation_id_of
from ticketing import handlers
from ticketing.domain import OpenTicket, Ticket, TicketError
from ticketing.numbers import PostgresTicketNumbers
from ticketing.views import TicketView


@dataclass(frozen=True)
class ApiDeps:
    pool: Callable[[], asyncpg.Pool]
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    agent_id: str


# Until JWT authentication lands (issue 3) the caller names its tenant and agent in headers.
async def principal(
    x_tenant_id: Annotated[TenantId | None, Header(description="The caller's tenant")] = None,
    x_agent_id: Annotated[str | None, Header(max_length=100)] = None,
) -> Principal:
    if not x_tenant_id or not x_agent_id:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "X-Tenant-Id and X-Agent-Id headers are required"
        )
    return Principal(x_tenant_id, x_agent_id)


class OpenTicketRequest(BaseModel):
    """An agent opens a ticket on a customer's behalf."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=250)
    description: str = Field(min_length=1, max_length=65_536)
    requester: Requester
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.PHONE
    type: TicketType = TicketType.QUESTION
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    organisation: Organisation | None = None


Caller = Annotated[Principal, Depends(principal)]


def router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(prefix="/v1/tickets", tags=["tickets"])

    @api.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=TicketView,
        responses={200: {"description": "Already opened with this Idempotency-Key"}},
    )
    async def open_ticket(
        body: OpenTicketRequest,
        caller: Caller,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(min_length=1, max_length=200, description="Re-sent requests open one ticket"),
        ] = None,
    ) -> Any:
        try:
            cmd = OpenTicket(
                **body.model_dump(exclude={"tags"}),
                tags=tuple(body.tags),
                opened_by=Actor(kind=ActorKind.AGENT, id=caller.agent_id),
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
        ticket_id = (
            handlers.ticket_id_for_idempotency_key(caller.tenant_id, idempotency_key)
            if idempotency_key
            else uuid4()
        )
        ctx = handlers.CommandContext(caller.tenant_id, correlation_id_of(request))
        ticket, created = await _open(deps, cmd, ctx, ticket_id)
        response.headers["Location"] = f"/v1/tickets/{ticket.id}"
        if not created:
            response.status_code = status.HTTP_200_OK
        return TicketView.of(ticket)

    @api.get("/{ticket_id}", response_model=TicketView)
    async def get_ticket(ticket_id: UUID, caller: Caller) -> Any:
        async with deps.pool().acquire() as conn:
            history = await PostgresEventStore(conn).load(caller.tenant_id, ticket_id)
        ticket = Ticket.from_history(history)
        if ticket is None:  # also for another tenant's ticket: never reveal it exists
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"ticket {ticket_id} not found")
        return TicketView.of(ticket)

    return api


async def _open(
    deps: ApiDeps, cmd: OpenTicket, ctx: handlers.CommandContext, ticket_id: UUID
) -> tuple[Ticket, bool]:
    # A concurrent request with the same Idempotency-Key loses the append race; the retry
    # then finds the ticket the winner opened.
    for _ in range(3):
        try:
            async with deps.pool().acquire() as conn, conn.transaction():
                return await handlers.open_ticket(
                    cmd,
                    ctx,
                    ticket_id=ticket_id,
                    store=PostgresEventStore(conn),
                    numbers=PostgresTicketNumbers(conn),
                    now=deps.clock(),
                )
        except ConcurrencyError:
            continue
        except TicketError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    raise HTTPException(status.HTTP_409_CONFLICT, "the ticket was changed concurrently; retry")
