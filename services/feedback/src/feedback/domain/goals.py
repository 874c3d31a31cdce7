"""Goals per agent and team: a target for one figure over the current week, month or
quarter, and how far each agent or team is from it.

CSAT, NPS and CES come from the answers (credited as the tenant's rule says); the response
and resolution figures come from the SLA service's verdicts (sla.events.v1), in the business
time the SLA policy counts, for the ticket's assignee (when solved, else now) and group.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from helpdesk_contracts import SurveyKind


class GoalMetric(StrEnum):
    CSAT = "csat"
    """CSAT %: share of answers of 4 or 5."""
    NPS = "nps"
    CES = "ces"
    """The average effort answer (1..7, higher is easier)."""
    FIRST_RESPONSE_MEDIAN = "first_response_median"
    """Median first response time, seconds."""
    RESOLUTION_P90 = "resolution_p90"
    """90th percentile of resolution time, seconds."""

    @property
    def lower_is_better(self) -> bool:
        return self in (GoalMetric.FIRST_RESPONSE_MEDIAN, GoalMetric.RESOLUTION_P90)

    @property
    def survey(self) -> SurveyKind | None:
        return SurveyKind(self.value) if self.value in SurveyKind.__members__.values() else None


class Scope(StrEnum):
    AGENT = "agent"
    GROUP = "group"


class Period(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


@dataclass(frozen=True)
class Progress:
    met: bool | None
    """None: nothing measured yet in the period."""
    gap: float
    """How far from the target, as a share of it (0 when met): what orders the list."""


def progress(metric: GoalMetric, target: float, actual: float | None) -> Progress:
    if actual is None:
        return Progress(None, 0.0)
    if metric.lower_is_better:
        shortfall = actual - target
    elif metric is GoalMetric.NPS:
        shortfall = target - actual  # NPS runs -100..100: measured on its 200-point range
        return Progress(shortfall <= 0, max(0.0, shortfall / 200.0))
    else:
        shortfall = target - actual
    scale = abs(target) or 1.0
    return Progress(shortfall <= 0, round(max(0.0, shortfall / scale), 4))


def period_start(period: Period, now: datetime) -> datetime:
    """The start of the current period, in UTC (weeks start on Monday)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.WEEK:
        return day.fromordinal(day.toordinal() - day.weekday()).replace(tzinfo=now.tzinfo)
    if period is Period.MONTH:
        return day.replace(day=1)
    return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
