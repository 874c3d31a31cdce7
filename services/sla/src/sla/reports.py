"""Compliance and the support metrics of our source documents, straight from the clocks.

A clock counts in the period in which its outcome was decided (when it breached, or when it
stopped in time), under the priority, channel, group and assignee the ticket had then.
Durations are the clocks' own: business time where the policy counts business hours, with
paused time left out.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from helpdesk_runtime.db import Connection


class Dimension(StrEnum):
    METRIC = "metric"
    PRIORITY = "priority"
    GROUP = "group"
    AGENT = "agent"
    CHANNEL = "channel"
    POLICY = "policy"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# As the ticket was when the clock's outcome was decided (see migration 0002).
_KEY = {
    Dimension.METRIC: "NULL::text",
    Dimension.PRIORITY: "c.priority",
    Dimension.GROUP: "c.group_id",
    Dimension.AGENT: "c.assignee_id",
    Dimension.CHANNEL: "c.channel",
    Dimension.POLICY: "c.policy_id",
}


@dataclass(frozen=True)
class ComplianceRow:
    metric: str
    key: str | None
    bucket: datetime | None
    achieved: int
    breached: int
    median_s: float | None
    p90_s: float | None

    @property
    def compliance(self) -> float | None:
        judged = self.achieved + self.breached
        return None if judged == 0 else self.achieved / judged


async def compliance(
    conn: Connection, tenant_id: str, start: datetime, end: datetime, by: Dimension,
    period: Period | None, timezone: str,
) -> list[ComplianceRow]:  # fmt: skip
    """Per metric (and `by`, and `period` in `timezone`): clocks achieved and breached,
    compliance, and the median and 90th percentile of the time they took."""
    bucket = "NULL::timestamp"
    zone: list[str] = []
    if period is not None:
        bucket, zone = (
            f"date_trunc('{Period(period).value}', c.decided AT TIME ZONE $4)",
            [timezone],
        )
    rows = await conn.fetch(
        f"""
        SELECT c.metric, {_KEY[by]} AS key, {bucket} AS bucket,
            count(*) FILTER (WHERE c.breached_at IS NULL) AS achieved,
            count(*) FILTER (WHERE c.breached_at IS NOT NULL) AS breached,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.elapsed))
                FILTER (WHERE c.state IN ('achieved', 'stopped')) AS median_s,
            percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM c.elapsed))
                FILTER (WHERE c.state IN ('achieved', 'stopped')) AS p90_s
        FROM (SELECT *, coalesce(breached_at, ended_at) AS decided FROM clocks
              WHERE tenant_id = $1 AND (state = 'achieved' OR breached_at IS NOT NULL)
                AND coalesce(breached_at, ended_at) >= $2
                AND coalesce(breached_at, ended_at) < $3) AS c
        GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3
        """,
        tenant_id, start, end, *zone,
    )  # fmt: skip
    return [
        ComplianceRow(r["metric"], r["key"], r["bucket"], r["achieved"], r["breached"],
                      r["median_s"], r["p90_s"])
        for r in rows
    ]  # fmt: skip


@dataclass(frozen=True)
class Backlog:
    open_tickets: int
    oldest_age_s: float | None
    by_age: dict[str, int]


@dataclass(frozen=True)
class SupportMetrics:
    requests: int
    first_response_median_s: float | None
    first_response_p90_s: float | None
    time_to_close_median_s: float | None
    time_to_close_p90_s: float | None
    backlog: Backlog


AGE_BUCKETS = (("under_1d", 1), ("1d_to_3d", 3), ("3d_to_7d", 7), ("7d_to_30d", 30))


async def support_metrics(
    conn: Connection, tenant_id: str, start: datetime, end: datetime, now: datetime
) -> SupportMetrics:
    """The number of requests, first response time, time to close (resolution clocks), and
    the backlog of tickets not yet solved with its age."""
    requests = await conn.fetchval(
        "SELECT count(*) FROM sla_tickets WHERE tenant_id = $1 AND opened_at >= $2"
        " AND opened_at < $3",
        tenant_id, start, end,
    )  # fmt: skip
    times = {
        r["metric"]: r
        for r in await conn.fetch(
            """
            SELECT metric,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM elapsed)) AS m,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM elapsed)) AS p
            FROM clocks WHERE tenant_id = $1 AND state IN ('achieved', 'stopped')
                AND metric IN ('first_response', 'resolution')
                AND ended_at >= $2 AND ended_at < $3
            GROUP BY metric
            """,
            tenant_id,
            start,
            end,
        )
    }
    lowers = (0, *(limit for _, limit in AGE_BUCKETS))
    buckets = ", ".join(
        f'count(*) FILTER (WHERE age >= {lower * 86400} AND age < {limit * 86400}) AS "{name}"'
        for (name, limit), lower in zip(AGE_BUCKETS, lowers, strict=False)
    )
    backlog = await conn.fetchrow(
        f"""
        SELECT count(*) AS open, max(age) AS oldest, {buckets},
            count(*) FILTER (WHERE age >= {AGE_BUCKETS[-1][1] * 86400}) AS over_30d
        FROM (SELECT extract(epoch FROM $2 - opened_at) AS age FROM sla_tickets
              WHERE tenant_id = $1 AND status IN ('new', 'open', 'pending', 'on_hold')) AS a
        """,
        tenant_id, now,
    )  # fmt: skip
    assert backlog is not None
    by_age = {name: backlog[name] for name in [*(n for n, _ in AGE_BUCKETS), "over_30d"]}
    first, close = times.get("first_response"), times.get("resolution")
    return SupportMetrics(
        requests=requests,
        first_response_median_s=first["m"] if first else None,
        first_response_p90_s=first["p"] if first else None,
        time_to_close_median_s=close["m"] if close else None,
        time_to_close_p90_s=close["p"] if close else None,
        backlog=Backlog(
            open_tickets=backlog["open"],
            oldest_age_s=None if backlog["oldest"] is None else float(backlog["oldest"]),
            by_age=by_age,
        ),
    )
