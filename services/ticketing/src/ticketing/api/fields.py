"""Custom field definitions: admins keep them, agents read them to build forms."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.problems import problem_responses
from ticketing import fields_store
from ticketing.api.deps import ApiDeps
from ticketing.domain import FieldDefinition


def fields_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(prefix="/v1/fields", tags=["custom fields"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    @api.get("", response_model=list[FieldDefinition])
    async def list_fields(caller: Agent) -> Any:
        async with deps.connection() as conn:
            return list((await fields_store.of_tenant(conn, caller.tenant_id)).values())

    @api.put("/{key}", response_model=FieldDefinition, responses=problem_responses(403))
    async def define_field(key: str, body: FieldDefinition, caller: Admin) -> Any:
        """Define a field, or change its definition (values already stored are kept)."""
        if body.key != key:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "the key in the path and the body differ"
            )
        async with deps.transaction() as uow:
            before = (await fields_store.of_tenant(uow.conn, caller.tenant_id)).get(key)
            await fields_store.put(uow.conn, caller.tenant_id, body)
            await audit.record(
                uow.conn, tenant_id=caller.tenant_id, actor=caller, entity="custom_field",
                entity_id=key, action=Action.UPDATED if before else Action.CREATED,
                before=before, after=body,
            )  # fmt: skip
        return body

    @api.delete(
        "/{key}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
    )
    async def delete_field(key: str, caller: Admin) -> None:
        async with deps.transaction() as uow:
            before = (await fields_store.of_tenant(uow.conn, caller.tenant_id)).get(key)
            if not await fields_store.remove(uow.conn, caller.tenant_id, key):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no custom field {key!r}")
            await audit.record(
                uow.conn, tenant_id=caller.tenant_id, actor=caller, entity="custom_field",
                entity_id=key, action=Action.DELETED, before=before,
            )  # fmt: skip

    return api
