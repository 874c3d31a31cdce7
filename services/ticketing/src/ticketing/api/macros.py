"""Canned responses: supervisors keep them, agents apply them to tickets."""

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from helpdesk_contracts import Actor, ActorKind
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.http import correlation_id_of
from helpdesk_runtime.problems import problem_responses
from ticketing import handlers, macros_store
from ticketing.api.deps import ApiDeps, expected_version, http_errors
from ticketing.domain import CannedResponse, apply_canned_response
from ticketing.views import TicketView


class StoredCannedResponse(CannedResponse):
    id: UUID


def macros_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["canned responses"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806

    @api.get("/v1/canned-responses", response_model=list[StoredCannedResponse])
    async def list_canned_responses(caller: Agent) -> Any:
        async with deps.connection() as conn:
            found = await macros_store.all_of(conn, caller.tenant_id)
        return [StoredCannedResponse(id=i, **m.model_dump()) for i, m in found]

    @api.post(
        "/v1/canned-responses",
        status_code=status.HTTP_201_CREATED,
        response_model=StoredCannedResponse,
        responses=problem_responses(403, 409),
    )
    async def add_canned_response(body: CannedResponse, caller: Supervisor) -> Any:
        macro_id = uuid4()
        async with deps.transaction() as uow:
            try:
                await macros_store.add(uow.conn, caller.tenant_id, macro_id, body, caller.agent_id)
            except macros_store.DuplicateNameError as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
            await audit.record(
                uow.conn, tenant_id=caller.tenant_id, actor=caller, entity="canned_response",
                entity_id=str(macro_id), action=Action.CREATED, after=body,
            )  # fmt: skip
        return StoredCannedResponse(id=macro_id, **body.model_dump())

    @api.delete(
        "/v1/canned-responses/{macro_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problem_responses(403, 404),
    )
    async def delete_canned_response(macro_id: UUID, caller: Supervisor) -> None:
        async with deps.transaction() as uow:
            before = await macros_store.get(uow.conn, caller.tenant_id, macro_id)
            if not await macros_store.remove(uow.conn, caller.tenant_id, macro_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such canned response")
            await audit.record(
                uow.conn, tenant_id=caller.tenant_id, actor=caller, entity="canned_response",
                entity_id=str(macro_id), action=Action.DELETED, before=before,
            )  # fmt: skip

    @api.post(
        "/v1/tickets/{ticket_id}/canned-responses/{macro_id}",
        response_model=TicketView,
        responses=problem_responses(400, 404, 409),
    )
    async def apply(
        ticket_id: UUID,
        macro_id: UUID,
        caller: Agent,
        request: Request,
        response: Response,
        version: Annotated[int | None, Depends(expected_version)],
    ) -> Any:
        """Reply with the template filled in, and make the macro's status/tag/priority changes."""
        agent, at = Actor(kind=ActorKind.AGENT, id=caller.agent_id), deps.clock()
        async with http_errors(), deps.transaction() as uow:
            macro = await macros_store.get(uow.conn, caller.tenant_id, macro_id)
            if macro is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such canned response")
            ticket = await handlers.change_ticket(
                ticket_id,
                handlers.CommandContext(caller.tenant_id, correlation_id_of(request)),
                lambda t: apply_canned_response(
                    t, macro, agent, at, message_id=uuid4(), agent_name=caller.name
                ),
                store=uow.events,
                now=at,
                expected_version=version,
            )
        response.headers["ETag"] = f'"{ticket.version}"'
        return TicketView.of(ticket)

    return api
