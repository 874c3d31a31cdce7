"""Commands: open, reply, note, update, merge, link to a problem, solve a problem."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, Request, Response, status

from helpdesk_contracts import Actor, ActorKind, AttachmentRef
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.eventstore import ConcurrencyError
from helpdesk_runtime.http import correlation_id_of
from helpdesk_runtime.problems import problem_responses
from ticketing import attachments_store, directory_store, fields_store, handlers
from ticketing.api.deps import ApiDeps, expected_version, http_errors
from ticketing.api.schemas import (
    LinkProblemRequest,
    MergeRequest,
    NoteRequest,
    OpenTicketRequest,
    ReplyRequest,
    SolveProblemRequest,
    UpdateTicketRequest,
)
from ticketing.directory_store import LinkRequest
from ticketing.domain import (
    OpenTicket,
    Ticket,
    check_fields,
    link_incident,
    merge,
    solve_problem,
)
from ticketing.views import TicketView

CHANGE = problem_responses(400, 404, 409)  # If-Match, no such ticket, stale or concurrent
MANY = problem_responses(404, 409)


def _actor(p: Principal) -> Actor:
    return Actor(kind=ActorKind.AGENT, id=p.agent_id)


def commands_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(prefix="/v1/tickets", tags=["tickets"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806
    Version = Annotated[int | None, Depends(expected_version)]  # noqa: N806

    def context(request: Request, caller: Principal) -> handlers.CommandContext:
        return handlers.CommandContext(caller.tenant_id, correlation_id_of(request))

    async def change(
        request: Request,
        response: Response,
        caller: Principal,
        ticket_id: UUID,
        decide: Callable[[Ticket, datetime], None],
        version: int | None,
    ) -> TicketView:
        return await change_with_files(
            request, response, caller, ticket_id, lambda t, at, _: decide(t, at), version, []
        )

    async def change_with_files(
        request: Request, response: Response, caller: Principal, ticket_id: UUID,
        decide: Callable[[Ticket, datetime, list[AttachmentRef]], None], version: int | None,
        attachment_ids: list[UUID],
    ) -> TicketView:  # fmt: skip
        """`change`, given the references of these uploads, now attached to the ticket."""
        at = deps.clock()  # one instant for the state and for the events' occurred_at
        async with http_errors(), deps.transaction() as uow:
            files = await attachments_store.attach(
                uow.conn, caller.tenant_id, ticket_id, attachment_ids, deps.attachments
            )
            ticket = await handlers.change_ticket(
                ticket_id,
                context(request, caller),
                lambda t: decide(t, at, files),
                store=uow.events,
                now=at,
                expected_version=version,
            )
        response.headers["ETag"] = f'"{ticket.version}"'
        return TicketView.of(ticket)

    async def change_many(
        request: Request,
        caller: Principal,
        ids: list[UUID],
        decide: Callable[[list[Ticket], datetime], object],
    ) -> list[TicketView]:
        at = deps.clock()
        async with http_errors(), deps.transaction() as uow:
            tickets = await handlers.change_tickets(
                ids, context(request, caller), lambda ts: decide(ts, at),
                store=uow.events, now=at,
            )  # fmt: skip
        return [TicketView.of(t) for t in tickets]

    @api.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=TicketView,
        responses={
            200: {"description": "Already opened with this Idempotency-Key"},
            **problem_responses(409),
        },
    )
    async def open_ticket(
        body: OpenTicketRequest,
        caller: Agent,
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(min_length=1, max_length=200, description="Re-sent requests open one ticket"),
        ] = None,
    ) -> Any:
        cmd = OpenTicket(
            **body.model_dump(exclude={"tags", "attachment_ids"}),
            tags=tuple(body.tags),
            opened_by=_actor(caller),
        )
        ticket_id = (
            handlers.ticket_id_for_idempotency_key(caller.tenant_id, idempotency_key)
            if idempotency_key
            else uuid4()
        )
        ticket, created = await _open(
            deps, cmd, context(request, caller), ticket_id, body.attachment_ids
        )
        response.headers["Location"] = f"/v1/tickets/{ticket.id}"
        response.headers["ETag"] = f'"{ticket.version}"'
        if not created:
            response.status_code = status.HTTP_200_OK
        return TicketView.of(ticket)

    @api.post("/{ticket_id}/replies", response_model=TicketView, responses=CHANGE)
    async def reply(
        ticket_id: UUID, body: ReplyRequest, caller: Agent, request: Request, response: Response,
        version: Version,
    ) -> Any:  # fmt: skip
        return await change_with_files(
            request, response, caller, ticket_id,
            lambda t, at, files: t.reply(_actor(caller), body.body, message_id=uuid4(), at=at,
                                         channel=body.channel, then=body.status,
                                         attachments=files),
            version, body.attachment_ids,
        )  # fmt: skip

    @api.post("/{ticket_id}/notes", response_model=TicketView, responses=CHANGE)
    async def add_note(
        ticket_id: UUID, body: NoteRequest, caller: Agent, request: Request, response: Response,
        version: Version,
    ) -> Any:  # fmt: skip
        return await change_with_files(
            request, response, caller, ticket_id,
            lambda t, at, files: t.add_note(_actor(caller), body.body, note_id=uuid4(), at=at,
                                            attachments=files),
            version, body.attachment_ids,
        )  # fmt: skip

    @api.patch("/{ticket_id}", response_model=TicketView, responses=CHANGE)
    async def update(
        ticket_id: UUID, body: UpdateTicketRequest, caller: Agent, request: Request,
        response: Response, version: Version,
    ) -> Any:  # fmt: skip
        by, given = _actor(caller), body.given()
        definitions = {}
        if body.custom_fields is not None:
            async with deps.connection() as conn:
                definitions = await fields_store.of_tenant(conn, caller.tenant_id)

        def decide(t: Ticket, at: datetime) -> None:
            if "priority" in given and body.priority:
                t.change_priority(body.priority, by, at)
            if "type" in given and body.type:
                t.change_type(body.type, by, at)
            if "assignee_id" in given or "group_id" in given:
                t.assign(
                    given.get("assignee_id", t.assignee_id), given.get("group_id", t.group_id),
                    by, at,
                )  # fmt: skip
            if body.tags is not None:
                t.set_tags(body.tags, by, at)
            if body.custom_fields is not None:
                check_fields(body.custom_fields, definitions)
                t.update_fields(body.custom_fields, by, at)
            if body.followers is not None:
                t.set_followers(body.followers, by, at)
            if body.status is not None:  # last: closing forbids every other change
                t.move_to(body.status, by, at, reason=body.resolution)

        return await change(request, response, caller, ticket_id, decide, version)

    @api.post("/{ticket_id}/merge", response_model=list[TicketView], responses=MANY)
    async def merge_into(
        ticket_id: UUID, body: MergeRequest, caller: Agent, request: Request
    ) -> Any:
        return await change_many(
            request, caller, [ticket_id, body.into_ticket_id],
            lambda ts, at: merge(ts[0], ts[1], _actor(caller), at),
        )  # fmt: skip

    @api.post("/{ticket_id}/problem", response_model=list[TicketView], responses=MANY)
    async def link_to_problem(
        ticket_id: UUID, body: LinkProblemRequest, caller: Agent, request: Request
    ) -> Any:
        return await change_many(
            request, caller, [ticket_id, body.problem_id],
            lambda ts, at: link_incident(ts[0], ts[1], _actor(caller), at),
        )  # fmt: skip

    @api.post(
        "/{ticket_id}/solve-problem",
        response_model=list[TicketView],
        responses=problem_responses(403, 404, 409),
    )
    async def solve_with_incidents(
        ticket_id: UUID, body: SolveProblemRequest, caller: Supervisor, request: Request
    ) -> Any:
        """Solve a problem and all its open incidents; each requester gets `message`."""
        async with http_errors(), deps.transaction() as uow:
            problem = await handlers.load(uow.events, caller.tenant_id, ticket_id)
        return await change_many(
            request, caller, [ticket_id, *problem.incidents],
            lambda ts, at: solve_problem(ts[0], ts[1:], _actor(caller), at, message=body.message),
        )  # fmt: skip

    return api


async def _open(
    deps: ApiDeps, cmd: OpenTicket, ctx: handlers.CommandContext, ticket_id: UUID,
    attachment_ids: list[UUID],
) -> tuple[Ticket, bool]:  # fmt: skip
    # A repeated request (same Idempotency-Key), or a concurrent one that lost the append
    # race, finds the id taken: it answers with the ticket that id opened.
    async with http_errors():
        for _ in range(3):
            try:
                async with deps.transaction() as uow:
                    if cmd.custom_fields:  # else nothing to check: spare the round trip
                        definitions = await fields_store.of_tenant(uow.conn, ctx.tenant_id)
                        check_fields(cmd.custom_fields, definitions)
                    request = LinkRequest(ctx.tenant_id, cmd.requester, cmd.organisation, None)
                    [link] = await directory_store.links(uow.conn, [request])
                    files = await attachments_store.attach(
                        uow.conn, ctx.tenant_id, ticket_id, attachment_ids, deps.attachments
                    )
                    opened = await handlers.open_ticket(
                        handlers.linked_command(cmd, link).model_copy(
                            update={"attachments": tuple(files)}
                        ),
                        ctx,
                        ticket_id=ticket_id,
                        store=uow.events,
                        numbers=uow.numbers,
                        now=deps.clock(),
                    )
                return opened, True
            except ConcurrencyError:
                async with deps.transaction() as uow:
                    existing = Ticket.from_history(await uow.events.load(ctx.tenant_id, ticket_id))
                if existing is not None:
                    return existing, False
        raise ConcurrencyError("the same ticket was opened three times concurrently")
