"""A person's rights (GDPR Art. 15 and 17, 152-FZ): export and erasure, for admins only."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from helpdesk_contracts import Actor, ActorKind, CustomerProfile
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.http import correlation_id_of
from helpdesk_runtime.problems import problem_responses
from ticketing import privacy, privacy_store
from ticketing.api.deps import ApiDeps, http_errors
from ticketing.handlers import CommandContext
from ticketing.privacy_store import Erasure


class ErasureView(BaseModel):
    """An erasure as recorded: who asked and when, never what was erased."""

    customer_id: str
    erased_subjects: list[str] = Field(
        description="The customer and the duplicates merged into it: the same person"
    )
    requested_by: str
    requested_at: datetime
    tickets: int = Field(description="Tickets whose personal data was erased; they stay")
    files: int = Field(description="Attachments deleted")

    @classmethod
    def of(cls, done: Erasure) -> "ErasureView":
        return cls(
            customer_id=done.customer_id, erased_subjects=list(done.erased_subjects),
            requested_by=done.requested_by, requested_at=done.requested_at,
            tickets=done.tickets, files=done.files,
        )  # fmt: skip


class CustomerExport(BaseModel):
    """Everything ticketing holds about a person, personal data readable. Events are the
    envelopes of the contracts (helpdesk-contracts), as published but opened."""

    customer_id: str
    exported_at: datetime
    profile: CustomerProfile | None = Field(description="Null once erased")
    merged_customers: list[str]
    erasure: ErasureView | None
    directory_events: list[dict[str, Any]]
    tickets: dict[UUID, list[dict[str, Any]]] = Field(
        description="Each ticket the person requested, with all of its events"
    )
    files: list[dict[str, Any]] = Field(
        description="Files attached to those tickets (GET /v1/attachments/{id} serves them)"
    )


def privacy_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["privacy"])
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    @api.post("/v1/customers/{customer_id}/erasure", response_model=ErasureView,
              responses=problem_responses(404))  # fmt: skip
    async def erase(customer_id: str, caller: Admin, request: Request) -> Any:
        """Erase a person: their keys are destroyed, so their personal data reads as erased
        in every event, topic and copy; their directory record and files are deleted; their
        tickets stay, with every count and SLA verdict. Asking again returns the erasure."""
        ctx = CommandContext(caller.tenant_id, correlation_id_of(request))
        by = Actor(kind=ActorKind.AGENT, id=caller.agent_id)
        async with http_errors(), deps.transaction() as uow:
            done = await privacy.erase_customer(
                uow, ctx, by, customer_id, deps.clock(), deps.blobs()
            )
        return ErasureView.of(done)

    @api.get("/v1/customers/{customer_id}/erasure", response_model=ErasureView,
             responses=problem_responses(404))  # fmt: skip
    async def erasure(customer_id: str, caller: Admin) -> Any:
        """The erasure of this person, if there was one."""
        async with deps.connection() as conn:
            done = await privacy_store.erasure(conn, caller.tenant_id, customer_id)
        if done is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{customer_id!r} was not erased")
        return ErasureView.of(done)

    @api.get("/v1/customers/{customer_id}/export", response_model=CustomerExport,
             responses=problem_responses(404))  # fmt: skip
    async def export(customer_id: str, caller: Admin) -> Any:
        """Everything ticketing holds about this person, as JSON (right of access)."""
        async with http_errors(), deps.transaction() as uow:
            found = await privacy.export_customer(uow, caller.tenant_id, customer_id)
        return CustomerExport(
            customer_id=found.customer_id, exported_at=deps.clock(), profile=found.profile,
            merged_customers=list(found.merged_customers),
            erasure=ErasureView.of(found.erasure) if found.erasure else None,
            directory_events=found.directory_events, tickets=found.tickets, files=found.files,
        )  # fmt: skip

    return api
