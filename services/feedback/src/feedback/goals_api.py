"""Goals per agent and team over HTTP: supervisors set targets, and see everyone's progress
in the current period, the furthest from their goal first (domain/goals.py)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from feedback import store
from feedback.api import ApiDeps
from feedback.domain.goals import GoalMetric, Period, Scope, period_start, progress
from feedback.domain.scores import Counts, score_of
from helpdesk_runtime import audit
from helpdesk_runtime.audit import Action
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import Connection
from helpdesk_runtime.problems import problem_responses

Subject = Annotated[str, Path(pattern=r"^[^\s/]{1,200}$", description="The agent or group id")]

_PERCENTILE = {GoalMetric.FIRST_RESPONSE_MEDIAN: ("first_response", 0.5),
               GoalMetric.RESOLUTION_P90: ("resolution", 0.9)}  # fmt: skip
_COLUMN = {Scope.AGENT: "agent_id", Scope.GROUP: "group_id"}


class GoalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: float = Field(ge=-100, le=10_000_000)
    """CSAT %, NPS, CES average, or seconds for the response and resolution figures."""
    period: Period = Period.MONTH


class Goal(GoalBody):
    model_config = ConfigDict(extra="ignore")  # read from rows, not from callers

    scope: Scope
    subject_id: str
    metric: GoalMetric
    set_by: str
    set_at: datetime


class GoalProgress(Goal):
    period_start: datetime
    actual: float | None
    """None: nothing measured yet this period."""
    measured: int
    """Answers or SLA clocks the figure is made of."""
    met: bool | None
    gap: float
    """How far from the target, as a share of it (0 when met)."""


def router(deps: ApiDeps) -> APIRouter:
    r = APIRouter(prefix="/v1/goals", tags=["goals"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    Supervisor = Annotated[Principal, Depends(deps.auth.at_least(Role.SUPERVISOR))]  # noqa: N806

    @r.get("", response_model=list[Goal], responses=problem_responses(401, 403))
    async def goals(caller: Agent) -> Any:
        async with deps.connection() as conn:
            rows = await conn.fetch("SELECT * FROM goals WHERE tenant_id = $1 ORDER BY scope,"
                                    " subject_id, metric", caller.tenant_id)  # fmt: skip
        return [Goal.model_validate(dict(row)) for row in rows]

    @r.put("/{scope}/{subject_id}/{metric}", response_model=Goal,
           responses=problem_responses(401, 403, 422))  # fmt: skip
    async def set_goal(scope: Scope, subject_id: Subject, metric: GoalMetric, body: GoalBody,
                       caller: Supervisor) -> Any:  # fmt: skip
        """Set (or change) an agent's or a team's target for one figure (audited)."""
        if metric.survey is not None and not _in_range(metric, body.target):
            raise HTTPException(422, f"a {metric} target must be within the survey's scale")
        async with deps.transaction() as conn:
            row = await conn.fetchrow(
                "INSERT INTO goals (tenant_id, scope, subject_id, metric, target, period,"
                " set_by, set_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (tenant_id, scope, subject_id, metric) DO UPDATE SET"
                " target = excluded.target, period = excluded.period, set_by = excluded.set_by,"
                " set_at = excluded.set_at RETURNING *",
                caller.tenant_id, scope.value, subject_id, metric.value, body.target,
                body.period.value, caller.agent_id, deps.clock(),
            )  # fmt: skip
            after = body.model_dump(mode="json")
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller, entity="goal",
                               entity_id=f"{scope}/{subject_id}/{metric}",
                               action=Action.UPDATED, after=after)  # fmt: skip
        assert row is not None  # INSERT ... RETURNING
        return Goal.model_validate(dict(row))

    @r.delete("/{scope}/{subject_id}/{metric}", status_code=204,
              responses=problem_responses(401, 403, 404))  # fmt: skip
    async def delete_goal(scope: Scope, subject_id: Subject, metric: GoalMetric,
                          caller: Supervisor) -> None:  # fmt: skip
        async with deps.transaction() as conn:
            gone = await conn.fetchval(
                "DELETE FROM goals WHERE tenant_id = $1 AND scope = $2 AND subject_id = $3"
                " AND metric = $4 RETURNING 1",
                caller.tenant_id, scope.value, subject_id, metric.value,
            )  # fmt: skip
            if gone is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "there is no such goal")
            await audit.record(conn, tenant_id=caller.tenant_id, actor=caller, entity="goal",
                               entity_id=f"{scope}/{subject_id}/{metric}",
                               action=Action.DELETED)  # fmt: skip

    @r.get("/progress", response_model=list[GoalProgress], responses=problem_responses(401, 403))
    async def progress_now(caller: Supervisor) -> Any:
        """Every goal's figure for its current period, the furthest from its target first;
        goals with nothing measured yet come last."""
        now = deps.clock()
        async with deps.connection() as conn:
            rows = await conn.fetch("SELECT * FROM goals WHERE tenant_id = $1", caller.tenant_id)
            found = [await _progress(conn, caller.tenant_id, dict(row), now) for row in rows]
        return sorted(found, key=lambda p: (p.met is None, -p.gap, p.scope, p.subject_id, p.metric))

    return r


def _in_range(metric: GoalMetric, target: float) -> bool:
    low, high = {GoalMetric.CSAT: (0, 100), GoalMetric.NPS: (-100, 100),
                 GoalMetric.CES: (1, 7)}[metric]  # fmt: skip
    return low <= target <= high


async def _progress(conn: Connection, tenant_id: str, goal: dict[str, Any],
                    now: datetime) -> GoalProgress:  # fmt: skip
    metric, scope = GoalMetric(goal["metric"]), Scope(goal["scope"])
    start = period_start(Period(goal["period"]), now)
    actual: float | None
    if (survey := metric.survey) is not None:
        counts = await store.score_counts(conn, tenant_id, survey, _COLUMN[scope], start, now)
        score = score_of(survey, counts.get(goal["subject_id"]) or Counts())
        actual, measured = score.score, score.answers
    else:
        clock_metric, fraction = _PERCENTILE[metric]
        values = await store.sla_percentiles(conn, tenant_id, clock_metric, fraction,
                                             scope.value, start, now)  # fmt: skip
        actual, measured = values.get(goal["subject_id"], (None, 0))
    state = progress(metric, goal["target"], actual)
    return GoalProgress.model_validate({
        **goal, "period_start": start, "actual": actual, "measured": measured,
        "met": state.met, "gap": state.gap,
    })  # fmt: skip
