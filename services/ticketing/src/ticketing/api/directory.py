"""The customer directory: customers and organisations, the customer page, merges.

Agents keep customers; agents keep organisations too, but only an admin changes an
organisation's tier or account manager (they change its SLA and who hears of breaches).
"""

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import (
    Actor,
    ActorKind,
    ContactKind,
    CustomerProfile,
    OrganisationProfile,
)
from helpdesk_contracts.directory import Contacts, Domain, ExternalIds, Notes, TimeZone
from helpdesk_contracts.values import Identifier, Language, Name, Tier
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.http import correlation_id_of
from helpdesk_runtime.problems import problem_responses
from ticketing import directory, directory_store
from ticketing.api.deps import ApiDeps, expected_version, http_errors
from ticketing.domain.directory import Customer, OrganisationRecord
from ticketing.handlers import CommandContext

_FORBID = ConfigDict(extra="forbid", frozen=True)


class CustomerRequest(CustomerProfile):
    """A new customer: its profile, and its id (generated when left out)."""

    model_config = _FORBID
    customer_id: Identifier | None = None


class CustomerChange(BaseModel):
    """The fields to change; a field left out keeps its value (null clears it)."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    contacts: Contacts = ()
    preferred_channel: ContactKind | None = None
    language: Language | None = None
    time_zone: TimeZone | None = None
    organisation_id: Identifier | None = None
    external_ids: ExternalIds = ()
    notes: Notes | None = None


class OrganisationRequest(OrganisationProfile):
    model_config = _FORBID
    organisation_id: Identifier


class OrganisationChange(BaseModel):
    """The fields to change; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")
    name: Name = Field(default="", description="Left out: kept")
    domains: tuple[Domain, ...] = Field(default=(), max_length=50)
    tier: Tier = "standard"
    account_manager_id: Identifier | None = None
    notes: Notes | None = None


class MergeCustomersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duplicate_customer_id: Identifier = Field(
        description="Merged into this customer: its contacts, external ids and tickets move"
    )


class CustomerView(BaseModel):
    customer_id: str
    version: int
    profile: CustomerProfile
    merged_ids: list[str]
    """Customers merged into this one."""


class OrganisationView(BaseModel):
    organisation_id: str
    version: int
    profile: OrganisationProfile


class TicketLine(BaseModel):
    ticket_id: Any
    number: int
    subject: str
    status: str
    priority: str
    opened_at: datetime
    updated_at: datetime


class CustomerCounts(BaseModel):
    tickets: int
    tickets_this_month: int
    open: int
    reopen_rate: float | None
    """Share of the customer's solved tickets that were reopened (None before any)."""


class CustomerPage(BaseModel):
    """What the agents' customer view shows."""

    customer: CustomerView
    organisation: OrganisationView | None
    open_tickets: list[TicketLine]
    recent_tickets: list[TicketLine]
    counts: CustomerCounts


class CustomerList(BaseModel):
    items: list[CustomerView]
    next_after: str | None


class OrganisationPage(BaseModel):
    organisation: OrganisationView
    customers: int
    open_tickets: int


class OrganisationList(BaseModel):
    items: list[OrganisationView]
    next_after: str | None


CHANGE = problem_responses(400, 404, 409)
RECENT = 10


def directory_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["directory"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806

    def ctx(request: Request, caller: Principal) -> tuple[CommandContext, Actor]:
        actor = Actor(kind=ActorKind.AGENT, id=caller.agent_id)
        return CommandContext(caller.tenant_id, correlation_id_of(request)), actor

    @api.post("/v1/customers", status_code=status.HTTP_201_CREATED, response_model=CustomerView,
              responses=problem_responses(409))  # fmt: skip
    async def register_customer(
        body: CustomerRequest, caller: Agent, request: Request, response: Response
    ) -> Any:
        """Add a customer; 409 when an address or external id belongs to another one."""
        customer_id = body.customer_id or f"cus_{uuid4().hex[:20]}"
        profile = CustomerProfile.model_validate(body.model_dump(exclude={"customer_id"}))
        c, by = ctx(request, caller)
        async with http_errors(), deps.transaction() as uow:
            customer = await directory.register_customer(
                uow, c, by, customer_id, profile, deps.clock()
            )
        response.headers["Location"] = f"/v1/customers/{customer_id}"
        response.headers["ETag"] = f'"{customer.version}"'
        return _customer(customer)

    @api.get("/v1/customers", response_model=CustomerList)
    async def customers(
        caller: Agent,
        q: Annotated[str | None, Query(min_length=1, max_length=254,
                                       description="Name prefix, or an address or an id")] = None,
        organisation_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
        after: Annotated[str | None, Query(description="next_after of the previous page")] = None,
    ) -> Any:  # fmt: skip
        async with deps.connection() as conn:
            rows = await directory_store.search_customers(
                conn, caller.tenant_id, query=q, organisation_id=organisation_id, limit=limit,
                after=after,
            )  # fmt: skip
        items = [_customer_row(r) for r in rows]
        full = len(items) == limit
        return CustomerList(items=items, next_after=items[-1].customer_id if full else None)

    @api.get("/v1/customers/{customer_id}", response_model=CustomerPage,
             responses=problem_responses(404))  # fmt: skip
    async def customer_page(customer_id: str, caller: Agent) -> Any:
        """The customer view: details, organisation with tier and account manager, open and
        recent tickets (also those sent from its email addresses before it was known), and
        the counts. A merged duplicate redirects to the customer it was merged into."""
        now = deps.clock()
        month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        async with deps.connection() as conn:
            row = await directory_store.customer_row(conn, caller.tenant_id, customer_id)
            if row is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"customer {customer_id!r} not found"
                )
            if row["merged_into"] is not None:
                return RedirectResponse(f"/v1/customers/{row['merged_into']}",
                                        status.HTTP_308_PERMANENT_REDIRECT)  # fmt: skip
            view = _customer_row(row)
            org_id = view.profile.organisation_id
            org = (
                await directory_store.organisation_row(conn, caller.tenant_id, org_id)
                if org_id
                else None
            )
            tickets = await directory_store.tickets_of_customer(
                conn, caller.tenant_id, customer_id, month, RECENT
            )
        n = tickets["counts"]
        return CustomerPage(
            customer=view,
            organisation=OrganisationView.model_validate(org) if org else None,
            open_tickets=[TicketLine.model_validate(t) for t in tickets["open"]],
            recent_tickets=[TicketLine.model_validate(t) for t in tickets["recent"]],
            counts=CustomerCounts(
                tickets=n["total"], tickets_this_month=n["this_month"], open=n["open"],
                reopen_rate=round(n["reopened"] / n["resolved"], 4) if n["resolved"] else None,
            ),
        )  # fmt: skip

    @api.patch("/v1/customers/{customer_id}", response_model=CustomerView, responses=CHANGE)
    async def change_customer(
        customer_id: str, body: CustomerChange, caller: Agent, request: Request,
        response: Response, version: Annotated[int | None, Depends(expected_version)],
    ) -> Any:  # fmt: skip
        """Change the fields sent (If-Match: the version the change was decided on)."""
        c, by = ctx(request, caller)
        async with http_errors(), deps.transaction() as uow:
            customer = await directory.change_customer(
                uow, c, by, customer_id, body.model_dump(exclude_unset=True), deps.clock(),
                version,
            )  # fmt: skip
        response.headers["ETag"] = f'"{customer.version}"'
        return _customer(customer)

    @api.post("/v1/customers/{customer_id}/merge", response_model=CustomerView,
              responses=problem_responses(404, 409, 422))  # fmt: skip
    async def merge_customers(
        customer_id: str, body: MergeCustomersRequest, caller: Agent, request: Request
    ) -> Any:
        """Merge a duplicate into this customer: it takes the duplicate's contacts and
        external ids, its tickets show on this customer's page, and new tickets naming the
        duplicate are this customer's."""
        c, by = ctx(request, caller)
        async with http_errors(), deps.transaction() as uow:
            survivor = await directory.merge_customers(
                uow, c, by, customer_id, body.duplicate_customer_id, deps.clock()
            )
        return _customer(survivor)

    @api.post("/v1/organisations", status_code=status.HTTP_201_CREATED,
              response_model=OrganisationView, responses=problem_responses(403, 409))  # fmt: skip
    async def register_organisation(
        body: OrganisationRequest, caller: Agent, request: Request, response: Response
    ) -> Any:
        profile = OrganisationProfile.model_validate(body.model_dump(exclude={"organisation_id"}))
        c, by = ctx(request, caller)
        async with http_errors(), deps.transaction() as uow:
            record = await directory.register_organisation(
                uow, c, by, body.organisation_id, profile, deps.clock(),
                may_set_terms=_is_admin(caller),
            )  # fmt: skip
        response.headers["Location"] = f"/v1/organisations/{body.organisation_id}"
        response.headers["ETag"] = f'"{record.version}"'
        return _organisation(record)

    @api.get("/v1/organisations", response_model=OrganisationList)
    async def organisations(
        caller: Agent,
        q: Annotated[str | None, Query(min_length=1, max_length=253,
                                       description="Name prefix, or an email domain")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
        after: str | None = None,
    ) -> Any:  # fmt: skip
        async with deps.connection() as conn:
            rows = await directory_store.organisations(
                conn, caller.tenant_id, query=q, limit=limit, after=after
            )
        items = [OrganisationView.model_validate(r) for r in rows]
        full = len(items) == limit
        return OrganisationList(items=items, next_after=items[-1].organisation_id if full else None)

    @api.get("/v1/organisations/{organisation_id}", response_model=OrganisationPage,
             responses=problem_responses(404))  # fmt: skip
    async def organisation_page(organisation_id: str, caller: Agent) -> Any:
        async with deps.connection() as conn:
            row = await directory_store.organisation_row(conn, caller.tenant_id, organisation_id)
            if row is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"organisation {organisation_id!r} not found"
                )
            members, open_tickets = await directory_store.organisation_counts(
                conn, caller.tenant_id, organisation_id
            )
        return OrganisationPage(organisation=OrganisationView.model_validate(row),
                                customers=members, open_tickets=open_tickets)  # fmt: skip

    @api.patch("/v1/organisations/{organisation_id}", response_model=OrganisationView,
               responses=problem_responses(400, 403, 404, 409))  # fmt: skip
    async def change_organisation(
        organisation_id: str, body: OrganisationChange, caller: Agent, request: Request,
        response: Response, version: Annotated[int | None, Depends(expected_version)],
    ) -> Any:  # fmt: skip
        """Change the fields sent. A new tier, account manager or name reaches the
        organisation's open tickets (`TicketOrganisationChanged`)."""
        c, by = ctx(request, caller)
        async with http_errors(), deps.transaction() as uow:
            record = await directory.change_organisation(
                uow, c, by, organisation_id, body.model_dump(exclude_unset=True), deps.clock(),
                version, may_set_terms=_is_admin(caller),
            )  # fmt: skip
        response.headers["ETag"] = f'"{record.version}"'
        return _organisation(record)

    return api


def _is_admin(caller: Principal) -> bool:
    return caller.role.rank >= Role.ADMIN.rank


def _customer(c: Customer) -> CustomerView:
    return CustomerView(customer_id=c.customer_id, version=c.version, profile=c.profile,
                        merged_ids=list(c.merged_ids))  # fmt: skip


def _customer_row(row: dict[str, Any]) -> CustomerView:
    return CustomerView(customer_id=row["customer_id"], version=row["version"],
                        profile=CustomerProfile.model_validate(row["profile"]),
                        merged_ids=row["merged_ids"])  # fmt: skip


def _organisation(o: OrganisationRecord) -> OrganisationView:
    assert o.profile is not None
    return OrganisationView(organisation_id=o.organisation_id, version=o.version,
                            profile=o.profile)  # fmt: skip
