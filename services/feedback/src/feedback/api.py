"""The feedback HTTP API: survey settings (admins), scores and their trend, answers, bad
feedback to follow up (supervisors), and why a ticket was or was not surveyed."""

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from feedback import store
from feedback.domain.health import health_of
from feedback.domain.scores import Counts, score_of
from feedback.domain.surveys import Skip, SurveySettings
from helpdesk_contracts import HealthReason, SurveyKind
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.http import RouteDeps
from helpdesk_runtime.problems import problem_responses

Limit = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first")]
Since = Annotated[datetime | None, Query(description="From (default: 30 days ago)")]
Until = Annotated[datetime | None, Query(description="Until, excluded (default: now)")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


ApiDeps = RouteDeps
"""Feedback's routes need nothing more than every service's."""


class Dimension(StrEnum):
    """What scores are grouped by."""

    TENANT = "tenant"
    AGENT = "agent"
    GROUP = "group"
    CHANNEL = "channel"
    PRIORITY = "priority"


class Interval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


_COLUMN = {Dimension.TENANT: "NULL::text", Dimension.AGENT: "agent_id",
           Dimension.GROUP: "group_id", Dimension.CHANNEL: "channel",
           Dimension.PRIORITY: "priority"}  # fmt: skip
"""Dimension -> its column (this module's own words, never the caller's)."""


class ScoreView(BaseModel):
    key: str | None
    """The agent, group, channel or priority; None for the tenant, or answers without it."""
    survey: SurveyKind
    answers: int
    """How many answers the score is made of: judge a small sample as such."""
    score: float | None
    """CSAT: % of 4-5 answers; NPS: % promoters - % detractors; CES: the average."""
    average: float | None
    csi: float | None
    """CSAT only: the average answer on 0..100."""
    invited: int
    response_rate: float | None
    """Answered invitations / invitations sent in the period."""


class TrendPoint(ScoreView):
    period_start: datetime


class Answer(BaseModel):
    feedback_id: UUID
    survey_id: UUID | None
    ticket_id: UUID | None
    customer_id: str
    survey: SurveyKind
    score: int
    reason: str | None
    comment: str | None
    """None also once the customer was erased."""
    agent_id: str | None
    group_id: str | None
    channel: str | None
    source: str
    answered_at: datetime
    replaces: UUID | None
    replaced_by: UUID | None
    """A later answer to the same survey: only that one counts."""


class Flag(BaseModel):
    flag_id: UUID
    feedback_id: UUID
    ticket_id: UUID | None
    customer_id: str
    survey: SurveyKind
    score: int
    threshold: int
    reason: str | None
    comment: str | None
    """The customer's words from the latest answer to the survey."""
    agent_id: str | None
    group_id: str | None
    raised_at: datetime
    state: str
    """open, acknowledged or resolved."""
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    outcome: str | None
    note: str | None
    resolved_by: str | None
    resolved_at: datetime | None


class FlagState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    """How a follow-up ended."""

    CONTACTED = "contacted"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    NO_ACTION = "no_action"
    UNREACHABLE = "unreachable"


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: Text | None = None


class SurveyDecision(BaseModel):
    ticket_id: UUID
    decided_at: datetime
    invited: bool
    skipped: str | None
    """Why no survey was sent, in words."""
    survey_id: UUID | None
    survey: SurveyKind | None
    agent_id: str | None
    expires_at: datetime | None
    answered_at: datetime | None
    answer_id: UUID | None


class HealthView(BaseModel):
    """A customer's or an organisation's health now (domain/health.py says how it is made)."""

    tenant_id: str
    subject: str
    """The customer id, or the organisation id."""
    organisation_id: str | None
    health: float
    """0..100; below the tenant's `at_risk_below` the customer is at risk."""
    at_risk_below: float
    reasons: list[HealthReason]
    """What took points away, the largest first."""
    signals: dict[str, Any]
    """What the score was made of."""


class AtRisk(BaseModel):
    customer_id: str
    organisation_id: str | None
    health: float
    at_risk: bool
    reasons: list[HealthReason]
    evaluated_at: datetime


Identifier = Annotated[str, Path(pattern=r"^[^\s/]{1,200}$")]


def router(deps: ApiDeps) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["feedback"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806
    Admin = Annotated[Principal, Depends(deps.auth.at_least(Role.ADMIN))]  # noqa: N806

    def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
        end = until or deps.clock()
        start = since or end - timedelta(days=30)
        if start.tzinfo is None or end.tzinfo is None:
            raise HTTPException(422, "since and until need a UTC offset (RFC 3339)")
        if start >= end:
            raise HTTPException(422, "since must be before until")
        if end - start > timedelta(days=3660):
            raise HTTPException(422, "at most ten years at once")
        return start, end

    @r.get("/survey-settings", response_model=SurveySettings,
           responses=problem_responses(401, 403))  # fmt: skip
    async def get_settings(caller: Agent) -> Any:
        """The tenant's survey settings (the documented defaults until an admin saves some)."""
        async with deps.connection() as conn:
            return (await store.settings(conn, [caller.tenant_id]))[caller.tenant_id]

    @r.put("/survey-settings", response_model=SurveySettings,
           responses=problem_responses(401, 403, 422))  # fmt: skip
    async def put_settings(body: SurveySettings, caller: Admin) -> Any:
        """Which survey follows a solved ticket, when, to whom, and what counts as bad
        feedback (audited)."""
        async with deps.transaction() as conn:
            before = (await store.settings(conn, [caller.tenant_id]))[caller.tenant_id]
            await store.save_settings(conn, caller.tenant_id, body)
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller,
                               entity="survey_settings", entity_id=caller.tenant_id,
                               action=Action.UPDATED, before=before.model_dump(mode="json"),
                               after=body.model_dump(mode="json"))  # fmt: skip
        return body

    @r.get("/scores", response_model=list[ScoreView], responses=problem_responses(401, 403))
    async def scores(
        caller: Agent, survey: SurveyKind = SurveyKind.CSAT,
        by: Dimension = Dimension.TENANT, since: Since = None, until: Until = None,
    ) -> Any:  # fmt: skip
        """Scores of one survey kind in a period, per agent, group, channel or priority,
        with their counts; the lowest first (what needs attention)."""
        start, end = window(since, until)
        async with deps.connection() as conn:
            counts = await store.score_counts(
                conn, caller.tenant_id, survey, _COLUMN[by], start, end
            )
        views = [_view(key, survey, c) for key, c in counts.items()]
        return sorted(views, key=lambda v: (v.score is None, v.score or 0.0, v.key or ""))

    @r.get("/scores/trend", response_model=list[TrendPoint],
           responses=problem_responses(401, 403, 422))  # fmt: skip
    async def trend(
        caller: Agent, survey: SurveyKind = SurveyKind.CSAT,
        interval: Interval = Interval.WEEK, since: Since = None, until: Until = None,
        agent_id: Annotated[str | None, Query(max_length=200)] = None,
        group_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:  # fmt: skip
        """The score per day, week or month (UTC), oldest first: a dashboard's chart.
        Periods without answers are there too, with no score."""
        start, end = window(since, until)
        async with deps.connection() as conn:
            rows = await conn.fetch(
                f"""
                WITH periods AS (
                    SELECT generate_series(
                        date_trunc($2, $3::timestamptz AT TIME ZONE 'UTC'),
                        $4::timestamptz AT TIME ZONE 'UTC' - interval '1 microsecond',
                        ('1 ' || $2)::interval) AS period)
                SELECT p.period, {store.AGGREGATES}
                FROM periods p LEFT JOIN answers a
                  ON a.tenant_id = $1 AND a.survey = $5 AND a.replaced_by IS NULL
                 AND a.answered_at >= $3 AND a.answered_at < $4
                 AND date_trunc($2, a.answered_at AT TIME ZONE 'UTC') = p.period
                 AND ($6::text IS NULL OR a.agent_id = $6) AND ($7::text IS NULL OR a.group_id = $7)
                GROUP BY p.period ORDER BY p.period
                """,
                caller.tenant_id, interval.value, start, end, survey.value, agent_id, group_id,
            )  # fmt: skip
        if len(rows) > 1000:
            raise HTTPException(422, "more than 1000 periods: choose a longer interval")
        return [
            TrendPoint(
                period_start=row["period"].replace(tzinfo=UTC),
                **_view(None, survey, store.counts_of(row)).model_dump(),
            )
            for row in rows
        ]

    @r.get("/answers", response_model=list[Answer], responses=problem_responses(401, 403))
    async def answers(
        caller: Agent, limit: Limit = 100,
        ticket_id: UUID | None = None,
        customer_id: Annotated[str | None, Query(max_length=200)] = None,
        agent_id: Annotated[str | None, Query(max_length=200)] = None,
        survey: SurveyKind | None = None,
    ) -> Any:  # fmt: skip
        """Answers with their comments, newest first; filtered by ticket, customer, agent or
        survey kind."""
        async with deps.connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM answers WHERE tenant_id = $1"
                " AND ($2::uuid IS NULL OR ticket_id = $2)"
                " AND ($3::text IS NULL OR customer_id = $3)"
                " AND ($4::text IS NULL OR agent_id = $4) AND ($5::text IS NULL OR survey = $5)"
                " ORDER BY answered_at DESC LIMIT $6",
                caller.tenant_id, ticket_id, customer_id, agent_id,
                survey.value if survey else None, limit,
            )  # fmt: skip
        return [Answer.model_validate(dict(row)) for row in rows]

    @r.get("/tickets/{ticket_id}/survey", response_model=SurveyDecision,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def ticket_survey(ticket_id: UUID, caller: Agent) -> Any:
        """Whether the ticket's customer was surveyed, and if not, why."""
        async with deps.connection() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM invitations WHERE tenant_id = $1 AND ticket_id = $2",
                caller.tenant_id, ticket_id,
            )  # fmt: skip
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no survey decided for ticket {ticket_id} (not solved yet, or"
                                " its survey is not due yet)")  # fmt: skip
        skipped = row["skipped"]
        return SurveyDecision(
            ticket_id=ticket_id, decided_at=row["decided_at"], invited=skipped is None,
            skipped=Skip[skipped.upper()].value if skipped else None, survey_id=row["survey_id"],
            survey=row["survey"], agent_id=row["agent_id"], expires_at=row["expires_at"],
            answered_at=row["answered_at"], answer_id=row["answer_id"],
        )  # fmt: skip

    @r.get("/flags", response_model=list[Flag], responses=problem_responses(401, 403))
    async def flags(
        caller: Supervisor, state: FlagState | None = FlagState.OPEN, limit: Limit = 100,
        agent_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:  # fmt: skip
        """Bad feedback to follow up, newest first (default: the open flags)."""
        async with deps.connection() as conn:
            rows = await conn.fetch(
                f"{_FLAGS} WHERE f.tenant_id = $1 AND ($2::text IS NULL OR f.state = $2)"
                " AND ($3::text IS NULL OR f.agent_id = $3) ORDER BY f.raised_at DESC LIMIT $4",
                caller.tenant_id, state.value if state else None, agent_id, limit,
            )  # fmt: skip
        return [Flag.model_validate(dict(row)) for row in rows]

    @r.post("/flags/{flag_id}/acknowledge", response_model=Flag,
            responses=problem_responses(401, 403, 404, 409))  # fmt: skip
    async def acknowledge(flag_id: UUID, caller: Supervisor) -> Any:
        """A supervisor takes the flag on."""
        return await _move(deps, caller, flag_id, "acknowledged", None)

    @r.post("/flags/{flag_id}/resolve", response_model=Flag,
            responses=problem_responses(401, 403, 404, 409, 422))  # fmt: skip
    async def resolve(flag_id: UUID, body: Resolution, caller: Supervisor) -> Any:
        """The follow-up is done: its outcome and a note."""
        return await _move(deps, caller, flag_id, "resolved", body)

    async def health(caller: Principal, who: str, key: str) -> HealthView:
        now = deps.clock()
        async with deps.connection() as conn:
            found = await store.signals(conn, who, [(caller.tenant_id, key)], now)
            settings = (await store.settings(conn, [caller.tenant_id]))[caller.tenant_id]
        seen = found[(caller.tenant_id, key)]
        if seen.signals.last_contact_at is None and not seen.signals.csat_answers_90d:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tickets or answers of {who} {key}")
        h = health_of(seen.signals, now)
        return HealthView(
            tenant_id=caller.tenant_id, subject=key, organisation_id=seen.organisation_id,
            health=h.score, at_risk_below=settings.at_risk_below, reasons=list(h.reasons),
            signals=asdict(seen.signals),
        )  # fmt: skip

    @r.get("/customers/{customer_id}/health", response_model=HealthView,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def customer_health(customer_id: Identifier, caller: Agent) -> Any:
        """A customer's health now, with its reasons and what it was made of."""
        return await health(caller, "customer", customer_id)

    @r.get("/organisations/{organisation_id}/health", response_model=HealthView,
           responses=problem_responses(401, 403, 404))  # fmt: skip
    async def organisation_health(organisation_id: Identifier, caller: Agent) -> Any:
        """An organisation's health: the same signals, summed over its customers."""
        return await health(caller, "organisation", organisation_id)

    @r.get("/customers/health", response_model=list[AtRisk],
           responses=problem_responses(401, 403))  # fmt: skip
    async def lowest_health(
        caller: Agent, limit: Limit = 50, at_risk: bool | None = None,
        organisation_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Any:  # fmt: skip
        """Customers by health as last evaluated, the lowest first: who to call today."""
        async with deps.connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM customer_health WHERE tenant_id = $1"
                " AND ($2::boolean IS NULL OR at_risk = $2)"
                " AND ($3::text IS NULL OR organisation_id = $3) ORDER BY health LIMIT $4",
                caller.tenant_id, at_risk, organisation_id, limit,
            )  # fmt: skip
        return [
            AtRisk(customer_id=r["customer_id"], organisation_id=r["organisation_id"],
                   health=r["health"], at_risk=r["at_risk"],
                   reasons=json.loads(r["reasons"]), evaluated_at=r["evaluated_at"])
            for r in rows
        ]  # fmt: skip

    return r


_FLAGS = (
    "SELECT f.*, (SELECT a.comment FROM answers a WHERE a.tenant_id = f.tenant_id"
    " AND (a.feedback_id = f.feedback_id OR (a.survey_id = f.flagged_for))"
    " ORDER BY a.answered_at DESC LIMIT 1) AS comment FROM flags f"
)


def _view(key: str | None, survey: SurveyKind, counts: Counts) -> ScoreView:
    s = score_of(survey, counts)
    return ScoreView(key=key, survey=survey, answers=s.answers, score=s.score,
                     average=s.average, csi=s.csi, invited=s.invited,
                     response_rate=s.response_rate)  # fmt: skip


async def _move(
    deps: ApiDeps, caller: Principal, flag_id: UUID, to: str, body: Resolution | None
) -> Flag:
    allowed_from = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}[to]
    async with deps.transaction() as conn:
        row = await conn.fetchrow(
            "SELECT state FROM flags WHERE tenant_id = $1 AND flag_id = $2 FOR UPDATE",
            caller.tenant_id, flag_id,
        )  # fmt: skip
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no flag {flag_id}")
        if row["state"] not in allowed_from:
            raise HTTPException(status.HTTP_409_CONFLICT, f"flag {flag_id} is {row['state']}")
        now = deps.clock()
        if to == "acknowledged":
            await conn.execute(
                "UPDATE flags SET state = $3, acknowledged_by = $4, acknowledged_at = $5"
                " WHERE tenant_id = $1 AND flag_id = $2",
                caller.tenant_id, flag_id, to, caller.agent_id, now,
            )  # fmt: skip
        else:
            assert body is not None
            await conn.execute(
                "UPDATE flags SET state = $3, resolved_by = $4, resolved_at = $5, outcome = $6,"
                " note = $7, acknowledged_by = coalesce(acknowledged_by, $4),"
                " acknowledged_at = coalesce(acknowledged_at, $5)"
                " WHERE tenant_id = $1 AND flag_id = $2",
                caller.tenant_id, flag_id, to, caller.agent_id, now, body.outcome.value,
                body.note,
            )  # fmt: skip
        after = {"state": to, **(body.model_dump(mode="json") if body else {})}
        customer = await conn.fetchval(
            "SELECT customer_id FROM flags WHERE tenant_id = $1 AND flag_id = $2",
            caller.tenant_id, flag_id,
        )  # fmt: skip
        await store.mark_due(conn, [(caller.tenant_id, customer)])  # its open flags count
        await audit.record(conn, tenant_id=caller.tenant_id, actor=caller, entity="flag",
                           entity_id=str(flag_id), action=Action.UPDATED,
                           before={"state": row["state"]}, after=after)  # fmt: skip
        found = await conn.fetchrow(
            f"{_FLAGS} WHERE f.tenant_id = $1 AND f.flag_id = $2", caller.tenant_id, flag_id
        )
    assert found is not None  # locked above
    return Flag.model_validate(dict(found))
