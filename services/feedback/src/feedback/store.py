"""The feedback service's tables: a statement per kind of read or write, for a whole batch."""

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from feedback.domain.health import Signals
from feedback.domain.scores import CSAT_GOOD, NPS_DETRACTOR, NPS_PROMOTER, Counts
from feedback.domain.surveys import SurveySettings, TicketFacts
from helpdesk_contracts import SurveyKind
from helpdesk_runtime.db import Connection, rows_by_tenant_key

TicketKey = tuple[str, UUID]
"""(tenant id, ticket id)"""

_TICKET_COLUMNS = tuple(f.name for f in dataclasses.fields(TicketFacts) if f.name != "changed")
_TICKET_TYPES = {
    "tenant_id": "text", "ticket_id": "uuid", "number": "bigint", "opened_at": "timestamptz",
    "tags": "jsonb", "merged": "boolean", "first_response_at": "timestamptz",
    "solved_at": "timestamptz", "solved_by_system": "boolean", "last_customer_at": "timestamptz",
    "reopens": "integer",
}  # fmt: skip
"""Column types for unnest; text unless named. Tags go as JSON (unnest flattens arrays)."""


async def tickets(conn: Connection, keys: Iterable[TicketKey]) -> dict[TicketKey, TicketFacts]:
    rows = await rows_by_tenant_key(
        conn, "tickets", "ticket_id", keys, ", ".join(_TICKET_COLUMNS), "uuid"
    )
    found = {}
    for row in rows:
        facts = TicketFacts(**{**dict(row), "tags": tuple(row["tags"])})
        found[(facts.tenant_id, facts.ticket_id)] = facts
    return found


async def save_tickets(conn: Connection, tickets: Sequence[TicketFacts]) -> None:
    if not tickets:
        return
    columns = ", ".join(_TICKET_COLUMNS)
    params = ", ".join(
        f"${i}::{_TICKET_TYPES.get(c, 'text')}[]" for i, c in enumerate(_TICKET_COLUMNS, 1)
    )
    values = [[_column(t, c) for t in tickets] for c in _TICKET_COLUMNS]
    updates = ", ".join(f"{c} = excluded.{c}" for c in _TICKET_COLUMNS[2:])
    select = ", ".join(
        "ARRAY(SELECT jsonb_array_elements_text(tags))" if c == "tags" else c
        for c in _TICKET_COLUMNS
    )
    await conn.execute(
        f"INSERT INTO tickets ({columns}) SELECT {select} FROM unnest({params}) AS u({columns})"
        f" ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET {updates}",
        *values,
    )


def _column(ticket: TicketFacts, column: str) -> Any:
    value = getattr(ticket, column)
    return json.dumps(list(value)) if column == "tags" else value


async def settings(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, SurveySettings]:
    """Each tenant's survey settings; the defaults for a tenant that saved none."""
    wanted = sorted(set(tenant_ids))
    rows = await conn.fetch(
        "SELECT tenant_id, settings FROM survey_settings WHERE tenant_id = ANY($1::text[])",
        wanted,
    )
    saved = {r["tenant_id"]: SurveySettings.model_validate_json(r["settings"]) for r in rows}
    return {t: saved.get(t) or SurveySettings() for t in wanted}


async def save_settings(conn: Connection, tenant_id: str, value: SurveySettings) -> None:
    await conn.execute(
        "INSERT INTO survey_settings (tenant_id, settings) VALUES ($1, $2::jsonb)"
        " ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings,"
        " updated_at = now()",
        tenant_id, value.model_dump_json(),
    )  # fmt: skip


async def last_invited(
    conn: Connection, customers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """When each (tenant, customer) was last sent a survey."""
    wanted = sorted(set(customers))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT x.n, x.k, (SELECT max(decided_at) FROM invitations i WHERE i.tenant_id = x.n"
        " AND i.customer_id = x.k AND i.survey_id IS NOT NULL) AS at"
        " FROM unnest($1::text[], $2::text[]) AS x(n, k)",
        [t for t, _ in wanted], [c for _, c in wanted],
    )  # fmt: skip
    return {(r["n"], r["k"]): r["at"] for r in rows if r["at"] is not None}


async def decided(conn: Connection, keys: Iterable[TicketKey]) -> set[TicketKey]:
    columns = "t.tenant_id, t.ticket_id"
    rows = await rows_by_tenant_key(conn, "invitations", "ticket_id", keys, columns, "uuid")
    return {(r["tenant_id"], r["ticket_id"]) for r in rows}


INVITATION_COLUMNS = (
    "tenant_id", "ticket_id", "number", "decided_at", "skipped", "survey_id", "customer_id",
    "survey", "agent_id", "group_id", "channel", "priority", "language", "expires_at",
)  # fmt: skip


async def save_invitations(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Decisions, as tuples in INVITATION_COLUMNS order; a ticket already decided keeps its
    first decision (a timer fired twice after a crash)."""
    await conn.executemany(
        f"INSERT INTO invitations ({', '.join(INVITATION_COLUMNS)}) VALUES"
        f" ({', '.join(f'${i}' for i in range(1, len(INVITATION_COLUMNS) + 1))})"
        " ON CONFLICT (tenant_id, ticket_id) DO NOTHING",
        rows,
    )


async def invitation(conn: Connection, tenant_id: str, survey_id: UUID) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM invitations WHERE tenant_id = $1 AND survey_id = $2",
        tenant_id, survey_id,
    )  # fmt: skip


async def invitations(conn: Connection, keys: Iterable[tuple[str, UUID]]) -> dict[Any, Any]:
    rows = await rows_by_tenant_key(conn, "invitations", "survey_id", keys, "t.*", "uuid")
    return {(r["tenant_id"], r["survey_id"]): r for r in rows}


async def answers(conn: Connection, keys: Iterable[tuple[str, UUID]]) -> dict[Any, Any]:
    columns = "t.tenant_id, t.feedback_id, t.survey_id, t.customer_id"
    rows = await rows_by_tenant_key(conn, "answers", "feedback_id", keys, columns, "uuid")
    return {(r["tenant_id"], r["feedback_id"]): r for r in rows}


ANSWER_COLUMNS = (
    "tenant_id", "feedback_id", "survey_id", "ticket_id", "customer_id", "survey", "score",
    "reason", "comment", "agent_id", "group_id", "channel", "priority", "organisation_id",
    "source", "answered_at", "replaces",
)  # fmt: skip
_ANSWER_TYPES = {"feedback_id": "uuid", "survey_id": "uuid", "ticket_id": "uuid",
                 "score": "smallint", "answered_at": "timestamptz", "replaces": "uuid"}  # fmt: skip


async def insert_answers(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[UUID]:
    """The answers not recorded before (by feedback id): the ids of those inserted."""
    if not rows:
        return set()
    params = ", ".join(
        f"${i}::{_ANSWER_TYPES.get(c, 'text')}[]" for i, c in enumerate(ANSWER_COLUMNS, 1)
    )
    inserted = await conn.fetch(
        f"INSERT INTO answers ({', '.join(ANSWER_COLUMNS)}) SELECT * FROM unnest({params})"
        " ON CONFLICT (tenant_id, feedback_id) DO NOTHING RETURNING feedback_id",
        *[[row[c] for row in rows] for c in ANSWER_COLUMNS],
    )
    return {r["feedback_id"] for r in inserted}


async def mark_replaced(conn: Connection, pairs: Sequence[tuple[str, UUID, UUID]]) -> None:
    """(tenant, earlier answer, the answer replacing it)."""
    await conn.executemany(
        "UPDATE answers SET replaced_by = $3 WHERE tenant_id = $1 AND feedback_id = $2"
        " AND replaced_by IS NULL",
        pairs,
    )


async def mark_answered(conn: Connection, rows: Sequence[tuple[str, UUID, UUID, datetime]]) -> None:
    """(tenant, survey, answer, when): the invitation's answer is the latest one."""
    await conn.executemany(
        "UPDATE invitations SET answered_at = coalesce(answered_at, $4), answer_id = $3"
        " WHERE tenant_id = $1 AND survey_id = $2",
        rows,
    )


FLAG_COLUMNS = (
    "tenant_id", "flag_id", "flagged_for", "feedback_id", "ticket_id", "customer_id", "survey",
    "score", "threshold", "reason", "agent_id", "group_id", "raised_at", "organisation_id",
)  # fmt: skip


async def insert_flags(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> set[UUID]:
    """Flags (tuples in FLAG_COLUMNS order) not raised before for their invitation or answer:
    the ids of those inserted."""
    inserted: set[UUID] = set()
    for row in rows:  # few: one per bad answer
        flag_id = await conn.fetchval(
            f"INSERT INTO flags ({', '.join(FLAG_COLUMNS)}) VALUES"
            f" ({', '.join(f'${i}' for i in range(1, len(FLAG_COLUMNS) + 1))})"
            " ON CONFLICT (tenant_id, flagged_for) DO NOTHING RETURNING flag_id",
            *row,
        )
        if flag_id is not None:
            inserted.add(flag_id)
    return inserted


async def blank_comments(conn: Connection, tenant_id: str, customer_ids: Sequence[str]) -> int:
    """The erased customers' words go; their scores stay (counts and trends are not theirs)."""
    result = await conn.execute(
        "UPDATE answers SET comment = NULL WHERE tenant_id = $1 AND customer_id = ANY($2::text[])"
        " AND comment IS NOT NULL",
        tenant_id, list(customer_ids),
    )  # fmt: skip
    return int(result.split()[-1])


async def mark_due(conn: Connection, customers: Iterable[tuple[str, str]]) -> None:
    """These customers' health is to be evaluated again (the health job's queue)."""
    wanted = sorted(set(customers))
    if wanted:
        await conn.execute(
            "INSERT INTO health_due (tenant_id, customer_id)"
            " SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            [t for t, _ in wanted], [c for _, c in wanted],
        )  # fmt: skip


async def take_due(conn: Connection, limit: int) -> list[tuple[str, str]]:
    """A chunk of the queue, taken out in the caller's transaction (SKIP LOCKED: the
    replicas take different chunks)."""
    rows = await conn.fetch(
        "DELETE FROM health_due WHERE (tenant_id, customer_id) IN (SELECT tenant_id,"
        " customer_id FROM health_due ORDER BY since LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING tenant_id, customer_id",
        limit,
    )
    return [(r["tenant_id"], r["customer_id"]) for r in rows]


async def mark_stale(conn: Connection, evaluated_before: datetime) -> int:
    """Customers not evaluated since then are due again: time alone moves their windows."""
    result = await conn.execute(
        "INSERT INTO health_due (tenant_id, customer_id) SELECT tenant_id, customer_id"
        " FROM customer_health WHERE evaluated_at < $1 ON CONFLICT DO NOTHING",
        evaluated_before,
    )
    return int(result.split()[-1])


_SIGNALS = """
-- $3..$6: 30, 60, 90 and 180 days ago.
SELECT x.n AS tenant_id, x.k AS key,
  l.organisation_id, l.account_manager_id,
  (SELECT count(*) FILTER (WHERE t.opened_at >= $3) FROM tickets t
    WHERE t.tenant_id = x.n AND t.{who} = x.k AND t.opened_at >= $5)
    AS tickets_30d,
  (SELECT count(*) FROM tickets t WHERE t.tenant_id = x.n AND t.{who} = x.k
    AND t.opened_at >= $4 AND t.opened_at < $3)
    AS tickets_prev_30d,
  (SELECT count(*) FROM tickets t WHERE t.tenant_id = x.n AND t.{who} = x.k
    AND t.opened_at >= $5) AS tickets_90d,
  (SELECT coalesce(sum(t.reopens), 0) FROM tickets t WHERE t.tenant_id = x.n AND t.{who} = x.k
    AND t.opened_at >= $5) AS reopens_90d,
  (SELECT max(greatest(t.opened_at, t.last_customer_at)) FROM tickets t
    WHERE t.tenant_id = x.n AND t.{who} = x.k) AS last_contact_at,
  (SELECT count(*) FROM tickets t JOIN sla_clocks s ON s.tenant_id = t.tenant_id
    AND s.ticket_id = t.ticket_id WHERE t.tenant_id = x.n AND t.{who} = x.k
    AND s.verdict = 'breached' AND s.decided_at >= $3) AS breaches_30d,
  a.csat_answers_90d, a.csat_bad_90d, a.csat_avg_30d, a.csat_avg_prev_60d,
  (SELECT a2.score FROM answers a2 WHERE a2.tenant_id = x.n AND a2.{who} = x.k
    AND a2.survey = 'nps' AND a2.replaced_by IS NULL
    AND a2.answered_at >= $6
    ORDER BY a2.answered_at DESC LIMIT 1) AS latest_nps,
  (SELECT count(*) FROM flags f WHERE f.tenant_id = x.n AND f.{who} = x.k
    AND f.state <> 'resolved') AS open_flags
FROM unnest($1::text[], $2::text[]) AS x(n, k)
LEFT JOIN LATERAL (
  SELECT t.organisation_id, t.account_manager_id FROM tickets t
  WHERE t.tenant_id = x.n AND t.{who} = x.k ORDER BY t.opened_at DESC LIMIT 1) l ON true
CROSS JOIN LATERAL (
  SELECT count(*) AS csat_answers_90d,
    count(*) FILTER (WHERE a.score < 4) AS csat_bad_90d,
    avg(a.score) FILTER (WHERE a.answered_at >= $3) AS csat_avg_30d,
    avg(a.score) FILTER (WHERE a.answered_at < $3) AS csat_avg_prev_60d
  FROM answers a WHERE a.tenant_id = x.n AND a.{who} = x.k AND a.survey = 'csat'
    AND a.replaced_by IS NULL AND a.answered_at >= $5) a
"""
WHO = {"customer": "customer_id", "organisation": "organisation_id"}
"""Whose signals: a customer's, or an organisation's (summed over its customers)."""


@dataclass(frozen=True)
class Found:
    signals: Signals
    organisation_id: str | None
    account_manager_id: str | None
    """Of the latest ticket."""


async def signals(
    conn: Connection, who: str, keys: Iterable[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], Found]:
    """Each (tenant, customer or organisation)'s health signals, and its organisation."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await conn.fetch(
        _SIGNALS.format(who=WHO[who]),
        [t for t, _ in wanted],
        [k for _, k in wanted],
        *(now - timedelta(days=d) for d in (30, 60, 90, 180)),
    )
    found = {}
    for r in rows:
        found[(r["tenant_id"], r["key"])] = Found(
            Signals(
                tickets_30d=r["tickets_30d"], tickets_prev_30d=r["tickets_prev_30d"],
                tickets_90d=r["tickets_90d"], reopens_90d=r["reopens_90d"],
                breaches_30d=r["breaches_30d"], csat_answers_90d=r["csat_answers_90d"],
                csat_bad_90d=r["csat_bad_90d"], csat_avg_30d=_float(r["csat_avg_30d"]),
                csat_avg_prev_60d=_float(r["csat_avg_prev_60d"]), latest_nps=r["latest_nps"],
                open_flags=r["open_flags"], last_contact_at=r["last_contact_at"],
            ),
            r["organisation_id"], r["account_manager_id"],
        )  # fmt: skip
    return found


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def previous_health(
    conn: Connection, customers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[float, bool]]:
    """These customers' last health and whether they are at risk (CustomerAtRisk published
    for the current drop)."""
    columns = "t.tenant_id, t.customer_id, t.health, t.at_risk"
    rows = await rows_by_tenant_key(conn, "customer_health", "customer_id", customers, columns)
    return {(r["tenant_id"], r["customer_id"]): (r["health"], r["at_risk"]) for r in rows}


async def save_health(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(tenant, customer, organisation, health, reasons JSON, at risk, evaluated at)."""
    await conn.executemany(
        "INSERT INTO customer_health (tenant_id, customer_id, organisation_id, health, reasons,"
        " at_risk, evaluated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)"
        " ON CONFLICT (tenant_id, customer_id) DO UPDATE SET organisation_id ="
        " excluded.organisation_id, health = excluded.health, reasons = excluded.reasons,"
        " at_risk = excluded.at_risk, evaluated_at = excluded.evaluated_at",
        rows,
    )


async def save_clocks(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """SLA clocks' verdicts, each field kept unless the event says it (None: unchanged)."""
    await conn.executemany(
        "INSERT INTO sla_clocks AS c (tenant_id, clock_id, ticket_id, metric, verdict,"
        " elapsed_seconds, decided_at, assignee_id, group_id)"
        " VALUES ($1, $2, $3, $4, coalesce($5, 'none'), $6, $7, $8, $9)"
        " ON CONFLICT (tenant_id, clock_id) DO UPDATE SET"
        " verdict = coalesce($5, c.verdict), elapsed_seconds = coalesce($6, c.elapsed_seconds),"
        " decided_at = coalesce($7, c.decided_at), assignee_id = coalesce($8, c.assignee_id),"
        " group_id = coalesce($9, c.group_id)",
        [(r["tenant_id"], r["clock_id"], r["ticket_id"], r["metric"], r["verdict"],
          r["elapsed_seconds"], r["decided_at"], r["assignee_id"], r["group_id"])
         for r in rows],
    )  # fmt: skip


async def customers_of(
    conn: Connection, tickets: Iterable[tuple[str, UUID]]
) -> set[tuple[str, str]]:
    columns = "t.tenant_id, t.customer_id"
    rows = await rows_by_tenant_key(conn, "tickets", "ticket_id", tickets, columns, "uuid")
    return {(r["tenant_id"], r["customer_id"]) for r in rows}


async def sla_percentiles(
    conn: Connection, tenant_id: str, metric: str, fraction: float, column: str,
    start: datetime, end: datetime,
) -> dict[str | None, tuple[float | None, int]]:  # fmt: skip
    """The `fraction` percentile of the SLA clocks' elapsed seconds per agent (the ticket's
    assignee when solved, else now) or group, for clocks decided in [start, end): (value,
    clocks measured). `column` is this module's caller's own word: "agent" or "group"."""
    key = {"agent": "coalesce(t.assignee_at_solve, t.assignee_id)",
           "group": "coalesce(s.group_id, t.group_id)"}[column]  # fmt: skip
    rows = await conn.fetch(
        f"SELECT {key} AS key, percentile_cont($3) WITHIN GROUP (ORDER BY s.elapsed_seconds)"
        " AS value, count(*) AS n FROM sla_clocks s JOIN tickets t ON t.tenant_id ="
        " s.tenant_id AND t.ticket_id = s.ticket_id WHERE s.tenant_id = $1 AND s.metric = $2"
        " AND s.elapsed_seconds IS NOT NULL AND s.decided_at >= $4 AND s.decided_at < $5"
        " GROUP BY 1",
        tenant_id, metric, fraction, start, end,
    )  # fmt: skip
    return {r["key"]: (r["value"], r["n"]) for r in rows}


AGGREGATES = f"""
    count(a.score) AS answers, coalesce(sum(a.score), 0) AS total,
    count(*) FILTER (WHERE a.score >= {CSAT_GOOD}) AS good,
    count(*) FILTER (WHERE a.score >= {NPS_PROMOTER}) AS promoters,
    count(*) FILTER (WHERE a.score <= {NPS_DETRACTOR}) AS detractors
"""


async def score_counts(
    conn: Connection, tenant_id: str, survey: SurveyKind, column: str, start: datetime,
    end: datetime,
) -> dict[str | None, Counts]:  # fmt: skip
    """Counts of the answers (those that count) and invitations of [start, end) per
    `column` (the caller's own word: a column of both tables, or NULL::text for all)."""
    answered = await conn.fetch(
        f"SELECT {column} AS key, {AGGREGATES} FROM answers a WHERE a.tenant_id = $1"
        " AND a.survey = $2 AND a.replaced_by IS NULL AND a.answered_at >= $3"
        " AND a.answered_at < $4 GROUP BY 1",
        tenant_id, survey.value, start, end,
    )  # fmt: skip
    invited = await conn.fetch(
        f"SELECT {column} AS key, count(*) AS invited, count(answered_at) AS answered"
        " FROM invitations WHERE tenant_id = $1 AND survey = $2 AND survey_id IS NOT NULL"
        " AND decided_at >= $3 AND decided_at < $4 GROUP BY 1",
        tenant_id, survey.value, start, end,
    )  # fmt: skip
    counts: dict[str | None, Counts] = {r["key"]: counts_of(r) for r in answered}
    for row in invited:
        seen = counts.get(row["key"], Counts())
        counts[row["key"]] = Counts(**{**asdict(seen), "invited": row["invited"],
                                       "answered": row["answered"]})  # fmt: skip
    return counts


def counts_of(row: Any) -> Counts:
    return Counts(answers=row["answers"], total=row["total"], good=row["good"],
                  promoters=row["promoters"], detractors=row["detractors"])  # fmt: skip


async def merge_customer(conn: Connection, tenant_id: str, duplicate: str, into: str) -> None:
    """A duplicate customer merged into another: its tickets, answers and flags count for
    the customer it became part of (CustomerMerged); its own health is gone."""
    for table in ("tickets", "answers", "flags", "invitations"):
        await conn.execute(
            f"UPDATE {table} SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2",
            tenant_id, duplicate, into,
        )  # fmt: skip
    for table in ("customer_health", "health_due"):
        await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1 AND customer_id = $2",
                           tenant_id, duplicate)  # fmt: skip
