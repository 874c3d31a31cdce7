"""Queries: the ticket list with filters and cursor pages, one ticket, its timeline, counts."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel

from helpdesk_contracts import Priority, TicketStatus
from helpdesk_runtime.auth import Principal
from helpdesk_runtime.problems import problem_responses
from ticketing.api.deps import ApiDeps, http_errors
from ticketing.domain import Ticket
from ticketing.handlers import TicketNotFoundError
from ticketing.queries import CursorError, Sort, TicketFilter, counts_by_status, list_tickets
from ticketing.views import TicketSummary, TicketView, TimelineEntry

WORKING = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD]

NOT_FOUND = problem_responses(404)


class TicketPage(BaseModel):
    items: list[TicketSummary]
    next_cursor: str | None


def queries_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["tickets"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806

    async def page(caller: Principal, f: TicketFilter, **options: Any) -> TicketPage:
        async with deps.connection() as conn:
            try:
                rows, cursor = await list_tickets(conn, caller.tenant_id, f, **options)
            except CursorError as exc:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        return TicketPage(items=[TicketSummary.of_row(r) for r in rows], next_cursor=cursor)

    @api.get("/v1/tickets", response_model=TicketPage, responses=problem_responses(400))
    async def search(
        caller: Agent,
        status_: Annotated[list[TicketStatus], Query(alias="status")] = [],  # noqa: B006
        priority: Annotated[list[Priority], Query()] = [],  # noqa: B006
        assignee_id: str | None = None,
        unassigned: bool = False,
        group_id: str | None = None,
        requester_id: str | None = None,
        tag: Annotated[list[str], Query(description="Tickets with all these tags")] = [],  # noqa: B006
        q: Annotated[
            str | None, Query(max_length=200, description="Words in subject or messages")
        ] = None,
        opened_from: datetime | None = None,
        opened_to: datetime | None = None,
        updated_from: datetime | None = None,
        updated_to: datetime | None = None,
        sla_breached: Annotated[
            bool | None, Query(description="Only tickets with (or without) a breached SLA")
        ] = None,
        sla_due_before: Annotated[
            datetime | None, Query(description="Only tickets whose next SLA deadline is sooner")
        ] = None,
        sort: Sort = Sort.UPDATED,
        order: Annotated[
            str | None,
            Query(pattern="^(asc|desc)$", description="desc, except asc for sla_deadline"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
        cursor: str | None = None,
    ) -> Any:
        """Filter, sort and page through the tenant's tickets (pass `next_cursor` back)."""
        f = TicketFilter(
            statuses=tuple(status_), priorities=tuple(priority), assignee_id=assignee_id,
            unassigned=unassigned, group_id=group_id, requester_id=requester_id, tags=tuple(tag),
            text=q, opened_from=opened_from, opened_to=opened_to, updated_from=updated_from,
            updated_to=updated_to, sla_breached=sla_breached, sla_due_before=sla_due_before,
        )  # fmt: skip
        descending = order == "desc" if order else sort is not Sort.SLA_DEADLINE
        return await page(caller, f, sort=sort, descending=descending, limit=limit, cursor=cursor)

    @api.get("/v1/queue", response_model=TicketPage, responses=problem_responses(400))
    async def my_queue(
        caller: Agent,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
        cursor: str | None = None,
        sort: Annotated[
            Sort, Query(description="priority (most urgent first), or sla_deadline (soonest)")
        ] = Sort.PRIORITY,
    ) -> Any:
        """The caller's own unsolved tickets, most urgent (or breaching soonest) first."""
        f = TicketFilter(statuses=tuple(WORKING), assignee_id=caller.agent_id)
        descending = sort is not Sort.SLA_DEADLINE
        return await page(caller, f, sort=sort, descending=descending, limit=limit, cursor=cursor)

    @api.get("/v1/tickets/counts", response_model=dict[str, int])
    async def counts(caller: Agent) -> Any:
        """Tickets per status, for a dashboard (every status is listed, zeros included)."""
        async with deps.connection() as conn:
            found = await counts_by_status(conn, caller.tenant_id)
        return {s.value: found.get(s.value, 0) for s in TicketStatus}

    async def history(caller: Principal, ticket_id: UUID) -> list[Any]:
        async with http_errors(), deps.transaction() as uow:
            events = await uow.events.load(caller.tenant_id, ticket_id)
        if not events:  # another tenant's ticket too: never reveal it exists
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(TicketNotFoundError(ticket_id)))
        return events

    @api.get("/v1/tickets/{ticket_id}", response_model=TicketView, responses=NOT_FOUND)
    async def get_ticket(ticket_id: UUID, caller: Agent, response: Response) -> Any:
        """One ticket's current state, rebuilt from its events."""
        ticket = Ticket.from_history(await history(caller, ticket_id))
        assert ticket is not None
        response.headers["ETag"] = f'"{ticket.version}"'
        return TicketView.of(ticket)

    @api.get(
        "/v1/tickets/{ticket_id}/timeline", response_model=list[TimelineEntry], responses=NOT_FOUND
    )
    async def timeline(ticket_id: UUID, caller: Agent) -> Any:
        """Everything that happened to the ticket, oldest first."""
        return [TimelineEntry.of(e) for e in await history(caller, ticket_id)]

    return api
