"""The SLA HTTP API: calendars and policies (admins), the calendar preview, and each
ticket's clocks with their pause ledger (agents)."""

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Self
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from helpdesk_contracts import PolicyRef, SlaMetric, Verdict
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import Connection
from helpdesk_runtime.http import RouteDeps
from helpdesk_runtime.problems import problem_responses
from sla import configuration, reports, store
from sla.configuration import Catalogue, Kind, Saved
from sla.domain.calendar import BusinessCalendar, CalendarSpec
from sla.domain.clocks import Clock, ClockState, Pause
from sla.domain.policies import MAX_TARGET_MINUTES, PolicySpec
from sla.handlers import SlaHandlers
from sla.reports import Dimension, Period
from sla.watermark_watch import partition_marks
from sla.what_if import Tally, what_if

ItemId = Annotated[
    str,
    Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Lower-case letters, digits, _ and -"),
]


@dataclass(frozen=True)
class ApiDeps(RouteDeps):
    """Wired once, in bootstrap: every service's, and this one's."""

    catalogue: Catalogue
    stall_s: float
    handlers: SlaHandlers


class Calendar(BaseModel):
    calendar_id: str
    version: int
    spec: CalendarSpec


class Policy(BaseModel):
    policy_id: str
    version: int
    spec: PolicySpec


class Version(BaseModel):
    version: int
    saved_by: str
    deleted: bool
    spec: dict[str, Any] | None


class PreviewRequest(BaseModel):
    """A saved calendar (`calendar_id`) or a draft (`calendar`), and what to compute."""

    model_config = ConfigDict(extra="forbid")

    calendar_id: str | None = None
    calendar: CalendarSpec | None = None
    start: AwareDatetime
    target_minutes: int | None = Field(default=None, ge=0, le=MAX_TARGET_MINUTES)
    """The deadline of a target of this many business minutes started at `start`."""
    end: AwareDatetime | None = None
    """The business time between `start` and `end`."""

    @model_validator(mode="after")
    def _one_calendar_and_a_question(self) -> Self:
        if (self.calendar_id is None) == (self.calendar is None):
            raise ValueError("give either calendar_id (a saved calendar) or calendar (a draft)")
        if self.target_minutes is None and self.end is None:
            raise ValueError("give target_minutes (for a deadline) and/or end (for a duration)")
        if self.end is not None and self.end < self.start:
            raise ValueError("end is before start")
        return self


class PreviewAnswer(BaseModel):
    deadline: datetime | None = None
    business_minutes: float | None = None
    calendar_version: int | None = Field(None, description="The saved version used, if any")


class PauseView(BaseModel):
    paused_at: datetime
    resumed_at: datetime | None
    reason: str
    paused_by_event: UUID
    resumed_by_event: UUID | None
    paused_seconds: float | None = Field(description="Wall-clock length; None while paused")


class ClockView(BaseModel):
    clock_id: UUID
    metric: SlaMetric
    cycle: int
    state: ClockState
    verdict: Verdict | None
    policy: PolicyRef
    target_seconds: float
    started_at: datetime
    started_by_event: UUID
    started_by_position: int | None = Field(description="Its place in the input log")
    deadline: datetime | None
    breached_at: datetime | None
    elapsed_seconds: float = Field(description="Business time counted so far (or in all)")
    remaining_seconds: float | None = Field(description="Until the target, while open")
    ended_at: datetime | None
    ended_by_event: UUID | None
    ended_by_position: int | None
    pauses: list[PauseView]


class PartitionWatermark(BaseModel):
    partition: int
    up_to: datetime | None = Field(description="None: no watermark read on it yet")
    lag_seconds: float | None
    held_breaches: int = Field(description="Deadlines passed by the wall clock, not yet by it")
    stalled: bool


DraftId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class WhatIfRequest(BaseModel):
    """A period (tickets opened in it) and the drafts to judge it by."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    policies: dict[DraftId, PolicySpec] = Field(default_factory=dict, max_length=100)
    """Draft policies by id: they replace the saved policy of that id, or join the others."""
    remove_policies: list[DraftId] = Field(default_factory=list, max_length=100)
    calendars: dict[DraftId, CalendarSpec] = Field(default_factory=dict, max_length=20)
    """Draft calendars by id: they replace the saved calendar of that id, or are new."""

    @model_validator(mode="after")
    def _a_period(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=366):
            raise ValueError("a what-if covers at most 366 days")
        return self


class MetricCompliance(BaseModel):
    metric: SlaMetric
    achieved: int
    breached: int
    open: int
    cancelled: int
    compliance: float | None = Field(description="achieved / (achieved + breached)")


class VerdictChange(BaseModel):
    ticket_id: UUID
    ticket_number: int
    metric: SlaMetric
    cycle: int
    original: str
    what_if: str


class WhatIfAnswer(BaseModel):
    tickets: int
    original: list[MetricCompliance] = Field(description="As judged: the contractual record")
    what_if: list[MetricCompliance]
    changed: int = Field(description="Clocks whose outcome the drafts change")
    changes: list[VerdictChange] = Field(description="The first 200 of them")


class ComplianceLine(BaseModel):
    metric: SlaMetric
    key: str | None = Field(description="The value of `by` (None when by=metric)")
    period_start: datetime | None = Field(description="Local start of the period, if asked")
    achieved: int
    breached: int
    compliance: float | None
    median_seconds: float | None = Field(description="Of the clocks that stopped")
    p90_seconds: float | None


class BacklogView(BaseModel):
    open_tickets: int
    oldest_age_seconds: float | None
    by_age: dict[str, int]


class SupportReport(BaseModel):
    """The support metrics of our source documents, for one period."""

    requests: int = Field(description="Tickets opened in the period")
    first_response_median_seconds: float | None
    first_response_p90_seconds: float | None
    time_to_close_median_seconds: float | None = Field(description="Resolution clocks stopped")
    time_to_close_p90_seconds: float | None
    backlog: BacklogView = Field(description="Tickets not solved now, by age")


class TenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_lateness_minutes: int = Field(default=0, ge=0, le=24 * 60)
    """How long past the watermark a breach still waits for events stamped before they were
    published (intake messages back-dated to when the customer wrote). Later ones revise the
    verdict with an SlaVerdictRevised."""


class Reapplied(BaseModel):
    tickets: int = Field(description="Tickets with open clocks of the policy")
    sla_events: int = Field(description="SLA events published (re-targets, breaches)")


class TicketSla(BaseModel):
    ticket_id: UUID
    clocks: list[ClockView]


def router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(prefix="/v1/sla", tags=["sla"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    # -- calendars --------------------------------------------------------------------------

    @api.get("/calendars", response_model=list[Calendar])
    async def list_calendars(caller: Agent) -> Any:
        async with deps.connection() as conn:
            found = await configuration.current(conn, Kind.CALENDAR, [caller.tenant_id])
        return [_calendar(s) for _, s in sorted(found.items())]

    @api.get("/calendars/{calendar_id}", response_model=Calendar, responses=problem_responses(404))
    async def get_calendar(calendar_id: ItemId, caller: Agent) -> Any:
        return _calendar(await _current(deps, Kind.CALENDAR, caller, calendar_id))

    @api.get("/calendars/{calendar_id}/versions", response_model=list[Version],
             responses=problem_responses(404))  # fmt: skip
    async def calendar_versions(calendar_id: ItemId, caller: Agent) -> Any:
        return await _versions(deps, Kind.CALENDAR, caller, calendar_id)

    @api.put("/calendars/{calendar_id}", response_model=Calendar,
             responses=problem_responses(403))  # fmt: skip
    async def put_calendar(calendar_id: ItemId, body: CalendarSpec, caller: Admin) -> Any:
        """Save a calendar (a new version). Running clocks keep the version they started with."""
        version = await _save(deps, Kind.CALENDAR, caller, calendar_id, body)
        return Calendar(calendar_id=calendar_id, version=version, spec=body)

    @api.delete("/calendars/{calendar_id}", status_code=status.HTTP_204_NO_CONTENT,
                responses=problem_responses(403, 404, 409))  # fmt: skip
    async def delete_calendar(calendar_id: ItemId, caller: Admin) -> None:
        """Delete a calendar no policy uses (409 names the policies that do)."""
        async with deps.transaction() as conn:
            policies = await configuration.current(conn, Kind.POLICY, [caller.tenant_id])
            users = sorted(pid for (_, pid), s in policies.items()
                           if s.spec and s.spec.get("calendar_id") == calendar_id)  # fmt: skip
            if users:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"calendar {calendar_id} is used by policies {', '.join(users)}",
                )
            await _delete(conn, Kind.CALENDAR, caller, calendar_id)

    @api.post("/calendars/preview", response_model=PreviewAnswer,
              responses=problem_responses(403, 404))  # fmt: skip
    async def preview(body: PreviewRequest, caller: Admin) -> Any:
        """Check a calendar before saving it (or a saved one): the deadline of a target
        started at `start`, and/or the business time between `start` and `end`."""
        version = None
        if body.calendar is not None:
            calendar = BusinessCalendar.from_spec(body.calendar)
        else:
            assert body.calendar_id is not None
            saved = await _current(deps, Kind.CALENDAR, caller, body.calendar_id)
            calendar, version = deps.catalogue.calendar(caller.tenant_id, saved), saved.version
        answer = PreviewAnswer(calendar_version=version)
        try:
            if body.target_minutes is not None:
                answer.deadline = calendar.add(body.start, timedelta(minutes=body.target_minutes))
            if body.end is not None:
                between = calendar.between(body.start, body.end)
                answer.business_minutes = between.total_seconds() / 60
        except ValueError as exc:  # e.g. no business time in years
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return answer

    # -- policies ---------------------------------------------------------------------------

    @api.get("/policies", response_model=list[Policy])
    async def list_policies(caller: Agent) -> Any:
        """The tenant's policies in the order they are tried (the built-in default, an answer
        within 24 hours, applies when none matches)."""
        async with deps.connection() as conn:
            found = await configuration.current(conn, Kind.POLICY, [caller.tenant_id])
        policies = [_policy(s) for s in found.values()]
        return sorted(policies, key=lambda p: (p.spec.position, p.policy_id))

    @api.get("/policies/{policy_id}", response_model=Policy, responses=problem_responses(404))
    async def get_policy(policy_id: ItemId, caller: Agent) -> Any:
        return _policy(await _current(deps, Kind.POLICY, caller, policy_id))

    @api.get("/policies/{policy_id}/versions", response_model=list[Version],
             responses=problem_responses(404))  # fmt: skip
    async def policy_versions(policy_id: ItemId, caller: Agent) -> Any:
        return await _versions(deps, Kind.POLICY, caller, policy_id)

    @api.put("/policies/{policy_id}", response_model=Policy,
             responses=problem_responses(403))  # fmt: skip
    async def put_policy(policy_id: ItemId, body: PolicySpec, caller: Admin) -> Any:
        """Save a policy (a new version): new clocks use it, running clocks keep theirs."""
        if body.calendar_id is not None:
            async with deps.connection() as conn:
                known = await configuration.current(
                    conn, Kind.CALENDAR, [caller.tenant_id], body.calendar_id
                )
            if not known:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    [{"loc": ["body", "calendar_id"], "type": "unknown_calendar",
                      "msg": f"there is no calendar {body.calendar_id}"}],
                )  # fmt: skip
        version = await _save(deps, Kind.POLICY, caller, policy_id, body)
        return Policy(policy_id=policy_id, version=version, spec=body)

    @api.post("/policies/{policy_id}/reapply", response_model=Reapplied,
              responses=problem_responses(403, 404))  # fmt: skip
    async def reapply_policy(policy_id: ItemId, caller: Admin) -> Any:
        """Move the running clocks of this policy's older versions to its current version
        (by its re-target rule). Without this, running clocks keep the version they
        started with; new clocks always take the current one."""
        await _current(deps, Kind.POLICY, caller, policy_id)  # 404 for no such policy
        async with deps.transaction() as conn:
            tickets, events = await deps.handlers.reapply(conn, caller.tenant_id, policy_id)
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="sla_policy",
                entity_id=policy_id, action=Action.UPDATED,
                after={"reapplied_to_tickets": tickets},
            )  # fmt: skip
        return Reapplied(tickets=tickets, sla_events=events)

    @api.delete("/policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT,
                responses=problem_responses(403, 404))  # fmt: skip
    async def delete_policy(policy_id: ItemId, caller: Admin) -> None:
        async with deps.transaction() as conn:
            await _delete(conn, Kind.POLICY, caller, policy_id)

    # -- settings ---------------------------------------------------------------------------

    @api.get("/settings", response_model=TenantSettings)
    async def get_settings(caller: Agent) -> Any:
        async with deps.connection() as conn:
            late = (await store.allowed_lateness(conn, [caller.tenant_id]))[caller.tenant_id]
        return TenantSettings(allowed_lateness_minutes=int(late.total_seconds() // 60))

    @api.put("/settings", response_model=TenantSettings, responses=problem_responses(403))
    async def put_settings(body: TenantSettings, caller: Admin) -> Any:
        async with deps.transaction() as conn:
            before = await store.allowed_lateness(conn, [caller.tenant_id])
            await store.set_allowed_lateness(
                conn, caller.tenant_id, timedelta(minutes=body.allowed_lateness_minutes),
                caller.agent_id,
            )  # fmt: skip
            await audit.record(
                conn, tenant_id=caller.tenant_id, actor=caller, entity="sla_settings",
                entity_id=caller.tenant_id, action=Action.UPDATED,
                before={"allowed_lateness_minutes":
                        int(before[caller.tenant_id].total_seconds() // 60)},
                after=body,
            )  # fmt: skip
        return body

    # -- what-if ----------------------------------------------------------------------------

    @api.post("/what-if", response_model=WhatIfAnswer, responses=problem_responses(403))
    async def run_what_if(body: WhatIfRequest, caller: Supervisor) -> Any:
        """Compliance of the tickets opened in a period recomputed under draft policies and
        calendars, by replaying their events, beside the verdicts that were given. Nothing
        is saved or published: the original verdicts stay the contractual record."""
        async with deps.connection() as conn:
            saved = await configuration.current(conn, Kind.CALENDAR, [caller.tenant_id])
            known = {cid for _, cid in saved} | set(body.calendars)
            unknown = sorted({p.calendar_id for p in body.policies.values()
                              if p.calendar_id and p.calendar_id not in known})  # fmt: skip
            if unknown:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    f"no saved or draft calendar {', '.join(unknown)}",
                )
            report = await what_if(
                conn, deps.catalogue, caller.tenant_id, body.start, body.end,
                policies=body.policies, calendars=body.calendars, removed=body.remove_policies,
            )  # fmt: skip
        return WhatIfAnswer(
            tickets=report.tickets,
            original=_compliance(report.original),
            what_if=_compliance(report.what_if),
            changed=report.changed,
            changes=[VerdictChange(**vars(c)) for c in report.changes],
        )

    # -- reports ----------------------------------------------------------------------------

    @api.get("/reports/compliance", response_model=list[ComplianceLine],
             responses=problem_responses(403))  # fmt: skip
    async def compliance_report(
        caller: Supervisor, start: AwareDatetime, end: AwareDatetime,
        by: Dimension = Dimension.METRIC, period: Period | None = None,
        timezone: Annotated[str, Query(max_length=64)] = "UTC",
    ) -> Any:  # fmt: skip
        """Clocks achieved and breached per metric (and per `by`, and per `period` in
        `timezone`), their compliance and the median and 90th percentile of their times:
        one call per dashboard chart. A clock counts when its outcome was decided."""
        _period(start, end)
        _zone(timezone)
        async with deps.connection() as conn:
            rows = await reports.compliance(conn, caller.tenant_id, start, end, by, period,
                                            timezone)  # fmt: skip
        return [ComplianceLine(metric=r.metric, key=r.key, period_start=r.bucket,
                               achieved=r.achieved, breached=r.breached,
                               compliance=r.compliance, median_seconds=r.median_s,
                               p90_seconds=r.p90_s) for r in rows]  # fmt: skip

    @api.get("/reports/support", response_model=SupportReport, responses=problem_responses(403))
    async def support_report(caller: Supervisor, start: AwareDatetime, end: AwareDatetime) -> Any:
        """Requests, first response time, time to close and the backlog with its age."""
        _period(start, end)
        async with deps.connection() as conn:
            m = await reports.support_metrics(conn, caller.tenant_id, start, end, deps.clock())
        return SupportReport(
            requests=m.requests,
            first_response_median_seconds=m.first_response_median_s,
            first_response_p90_seconds=m.first_response_p90_s,
            time_to_close_median_seconds=m.time_to_close_median_s,
            time_to_close_p90_seconds=m.time_to_close_p90_s,
            backlog=BacklogView(
                open_tickets=m.backlog.open_tickets,
                oldest_age_seconds=m.backlog.oldest_age_s,
                by_age=m.backlog.by_age,
            ),
        )

    # -- watermarks -------------------------------------------------------------------------

    @api.get("/watermarks", response_model=list[PartitionWatermark],
             responses=problem_responses(403))  # fmt: skip
    async def watermarks(caller: Supervisor) -> Any:
        """How far each partition of the ticket events is vouched for: breaches wait for it.
        A stalled partition (ticketing's relay or watermarks not moving) holds its breaches."""
        async with deps.connection() as conn:
            marks = await partition_marks(conn, deps.clock(), deps.stall_s)
        return [PartitionWatermark(partition=m.partition, up_to=m.up_to, lag_seconds=m.lag_s,
                                   held_breaches=m.held, stalled=m.stalled)
                for m in marks]  # fmt: skip

    # -- tickets ----------------------------------------------------------------------------

    @api.get("/tickets/{ticket_id}", response_model=TicketSla, responses=problem_responses(404))
    async def ticket_sla(ticket_id: UUID, caller: Agent) -> Any:
        """Each clock of the ticket: policy and calendar versions, target, deadline, elapsed
        and remaining business time, state and verdict, and its pause ledger."""
        async with deps.connection() as conn:
            clocks = await store.clocks_of(conn, caller.tenant_id, ticket_id)
            if clocks is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no SLA for ticket {ticket_id}")
            refs = [(caller.tenant_id, c.policy) for c in clocks]
            rules = await deps.catalogue.rules(conn, [caller.tenant_id], refs)
            positions = await store.positions(conn, ticket_id)
        now = deps.clock()
        views = []
        for clock in clocks:
            elapsed = clock.elapsed
            if clock.state is ClockState.RUNNING and clock.since is not None and now > clock.since:
                elapsed += rules.calendar(caller.tenant_id, clock.policy).between(clock.since, now)
            views.append(_clock_view(clock, elapsed, positions))
        return TicketSla(ticket_id=ticket_id, clocks=views)

    @api.get(
        "/tickets/{ticket_id}/pauses",
        response_model=list[PauseView],
        responses={**problem_responses(404), 200: {"content": {"text/csv": {}}}},
    )
    async def pause_ledger(
        ticket_id: UUID, caller: Agent,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Any:  # fmt: skip
        """The ticket's pause ledger, every clock's pauses with their reasons and the events
        that began and ended them: proof for a contract dispute (`format=csv` to export)."""
        async with deps.connection() as conn:
            clocks = await store.clocks_of(conn, caller.tenant_id, ticket_id)
        if clocks is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no SLA for ticket {ticket_id}")
        rows = [(c, _pause_view(p)) for c in clocks for p in c.pauses]
        if format == "json":
            return [view for _, view in rows]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["clock_id", "metric", "cycle", "paused_at", "resumed_at", "reason",
                         "paused_by_event", "resumed_by_event", "paused_seconds"])  # fmt: skip
        for clock, v in rows:
            writer.writerow([clock.id, clock.metric.value, clock.cycle, v.paused_at.isoformat(),
                             v.resumed_at.isoformat() if v.resumed_at else "", v.reason,
                             v.paused_by_event, v.resumed_by_event or "",
                             "" if v.paused_seconds is None else v.paused_seconds])  # fmt: skip
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="sla-pauses-{ticket_id}.csv"'})  # fmt: skip

    return api


async def _current(deps: ApiDeps, kind: Kind, caller: Principal, item_id: str) -> Saved:
    async with deps.connection() as conn:
        found = await configuration.current(conn, kind, [caller.tenant_id], item_id)
    saved = found.get((caller.tenant_id, item_id))
    if saved is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no {kind.value} {item_id}")
    return saved


async def _versions(deps: ApiDeps, kind: Kind, caller: Principal, item_id: str) -> list[Version]:
    async with deps.connection() as conn:
        found = await configuration.versions(conn, kind, caller.tenant_id, item_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no {kind.value} {item_id}")
    return [Version(version=s.version, saved_by=by, deleted=s.spec is None, spec=s.spec)
            for s, by in found]  # fmt: skip


async def _save(deps: ApiDeps, kind: Kind, caller: Principal, item_id: str, spec: BaseModel) -> int:
    body = spec.model_dump(mode="json")
    async with deps.transaction() as conn:
        before = (await configuration.current(conn, kind, [caller.tenant_id], item_id)).get(
            (caller.tenant_id, item_id)
        )
        version = await configuration.save(conn, kind, caller.tenant_id, item_id, body,
                                           caller.agent_id)  # fmt: skip
        await audit.record(
            conn, tenant_id=caller.tenant_id, actor=caller, entity=f"sla_{kind.value}",
            entity_id=item_id, action=Action.UPDATED if before else Action.CREATED,
            before=before.spec if before else None, after={"version": version, **body},
        )  # fmt: skip
    return version


async def _delete(conn: Connection, kind: Kind, caller: Principal, item_id: str) -> None:
    found = await configuration.current(conn, kind, [caller.tenant_id], item_id)
    before = found.get((caller.tenant_id, item_id))
    if before is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no {kind.value} {item_id}")
    await configuration.save(conn, kind, caller.tenant_id, item_id, None, caller.agent_id)
    await audit.record(
        conn, tenant_id=caller.tenant_id, actor=caller, entity=f"sla_{kind.value}",
        entity_id=item_id, action=Action.DELETED, before=before.spec,
    )  # fmt: skip


def _period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start")
    if end - start > timedelta(days=731):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a report covers two years")


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown time zone {name!r}"
        ) from None


def _compliance(side: dict[SlaMetric, Tally]) -> list[MetricCompliance]:
    return [
        MetricCompliance(metric=metric, achieved=t.counts["achieved"],
                         breached=t.counts["breached"], open=t.counts["open"],
                         cancelled=t.counts["cancelled"], compliance=t.compliance)
        for metric, t in sorted(side.items())
    ]  # fmt: skip


def _calendar(saved: Saved) -> Calendar:
    return Calendar(calendar_id=saved.id, version=saved.version,
                    spec=CalendarSpec.model_validate(saved.spec))  # fmt: skip


def _policy(saved: Saved) -> Policy:
    return Policy(policy_id=saved.id, version=saved.version,
                  spec=PolicySpec.model_validate(saved.spec))  # fmt: skip


def _pause_view(p: Pause) -> PauseView:
    length = (p.resumed_at - p.paused_at).total_seconds() if p.resumed_at else None
    return PauseView(paused_at=p.paused_at, resumed_at=p.resumed_at, reason=p.reason,
                     paused_by_event=p.paused_by, resumed_by_event=p.resumed_by,
                     paused_seconds=length)  # fmt: skip


def _clock_view(c: Clock, elapsed: timedelta, positions: dict[UUID, int]) -> ClockView:
    open_ = c.is_open
    return ClockView(
        clock_id=c.id, metric=c.metric, cycle=c.cycle, state=c.state, verdict=c.verdict,
        policy=c.policy, target_seconds=c.target.total_seconds(), started_at=c.started_at,
        started_by_event=c.started_by, started_by_position=positions.get(c.started_by),
        deadline=c.deadline, breached_at=c.breached_at,
        elapsed_seconds=elapsed.total_seconds(),
        remaining_seconds=(c.target - elapsed).total_seconds() if open_ else None,
        ended_at=c.ended_at, ended_by_event=c.ended_by,
        ended_by_position=positions.get(c.ended_by) if c.ended_by else None,
        pauses=[_pause_view(p) for p in c.pauses],
    )  # fmt: skip
