"""Agent groups, availability and automatic assignment."""

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import Actor, ActorKind
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.http import correlation_id_of
from helpdesk_runtime.problems import problem_responses
from ticketing import groups_store, handlers
from ticketing.api.deps import ApiDeps, http_errors
from ticketing.domain import Strategy, choose
from ticketing.views import TicketView


class GroupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    strategy: Strategy = Strategy.ROUND_ROBIN
    members: list[str] = Field(default_factory=list, max_length=500)


class Member(BaseModel):
    agent_id: str
    available: bool


class Group(BaseModel):
    group_id: str
    name: str
    strategy: Strategy
    members: list[Member]


class Availability(BaseModel):
    model_config = ConfigDict(extra="forbid")

    available: bool


class AutoAssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_id: str = Field(min_length=1, max_length=100)


def groups_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["assignment"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    @api.get("/v1/groups", response_model=list[Group])
    async def list_groups(caller: Agent) -> Any:
        async with deps.connection() as conn:
            found = await groups_store.groups(conn, caller.tenant_id)
        return [Group.model_validate({**g, "members": _members(g)}) for g in found]

    @api.put("/v1/groups/{group_id}", response_model=Group, responses=problem_responses(403))
    async def put_group(group_id: str, body: GroupRequest, caller: Admin) -> Any:
        """Create or replace a group (members who stay keep their availability and turn)."""
        async with deps.transaction() as uow:
            before = _group(await groups_store.groups(uow.conn, caller.tenant_id), group_id)
            await groups_store.put_group(
                uow.conn, caller.tenant_id, group_id, body.name, body.strategy, body.members
            )
            after = _group(await groups_store.groups(uow.conn, caller.tenant_id), group_id)
            await audit.record(
                uow.conn, tenant_id=caller.tenant_id, actor=caller, entity="group",
                entity_id=group_id, action=Action.UPDATED if before else Action.CREATED,
                before=before, after=after,
            )  # fmt: skip
        assert after is not None
        return after

    async def availability(caller: Principal, agent_id: str, body: Availability) -> None:
        async with deps.transaction() as uow:
            if not await groups_store.set_availability(
                uow.conn, caller.tenant_id, agent_id, body.available
            ):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"{agent_id} is in no group")
            await audit.record(
                uow.conn, tenant_id=caller.tenant_id, actor=caller, entity="availability",
                entity_id=agent_id, action=Action.UPDATED, after=body,
            )  # fmt: skip

    @api.put(
        "/v1/agents/me/availability",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problem_responses(404),
    )
    async def set_my_availability(body: Availability, caller: Agent) -> None:
        """Take me off (or put me back into) automatic assignment."""
        await availability(caller, caller.agent_id, body)

    @api.put(
        "/v1/agents/{agent_id}/availability",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=problem_responses(403, 404),
    )
    async def set_availability(agent_id: str, body: Availability, caller: Supervisor) -> None:
        await availability(caller, agent_id, body)

    @api.post(
        "/v1/tickets/{ticket_id}/auto-assign",
        response_model=TicketView,
        responses=problem_responses(404, 409),
    )
    async def auto_assign(
        ticket_id: UUID, body: AutoAssignRequest, caller: Agent, request: Request,
        response: Response,
    ) -> Any:  # fmt: skip
        """Assign to the group's next available agent (by its strategy); when nobody is
        available the ticket waits in the group's queue, unassigned."""
        at = deps.clock()
        ctx = handlers.CommandContext(caller.tenant_id, correlation_id_of(request))
        async with http_errors(), deps.transaction() as uow:
            found = await groups_store.candidates(uow.conn, caller.tenant_id, body.group_id)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no group {body.group_id!r}")
            chosen = choose(*found)
            ticket = await handlers.change_ticket(
                ticket_id,
                ctx,
                lambda t: t.assign(
                    chosen, body.group_id, Actor(kind=ActorKind.AGENT, id=caller.agent_id), at
                ),
                store=uow.events,
                now=at,
            )
            if chosen is not None:
                await groups_store.mark_assigned(
                    uow.conn, caller.tenant_id, body.group_id, chosen, at
                )
        response.headers["ETag"] = f'"{ticket.version}"'
        return TicketView.of(ticket)

    return api


def _group(found: list[dict[str, object]], group_id: str) -> Group | None:
    group = next((g for g in found if g["group_id"] == group_id), None)
    return None if group is None else Group.model_validate({**group, "members": _members(group)})


def _members(group: dict[str, object]) -> list[Member]:
    return [Member.model_validate(m) for m in json.loads(str(group["members"]))]
