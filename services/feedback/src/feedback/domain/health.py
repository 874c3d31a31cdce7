"""Customer health: one score from 0 to 100 with its reasons, for customer success.

A customer (or an organisation: the same signals, summed over its customers) starts at 100
and loses points for what tends to come before churn. Each factor is capped, so no single
bad week sinks a customer on its own, and each one that costs points is a reason:

| reason            | signal                                                    | points      |
| ----------------- | --------------------------------------------------------- | ----------- |
| `sla_breaches`    | SLA clocks breached on their tickets, last 30 days        | 8 each, ≤ 30 |
| `low_csat`        | share of CSAT answers below 4, last 90 days               | x 30        |
| `csat_falling`    | CSAT average of the last 30 days ≥ 1 below the 60 before  | 10          |
| `nps_detractor`   | the latest NPS answer, last 180 days: 0-6                 | 15 (7-8: 5) |
| `many_reopens`    | reopens per ticket, last 90 days                          | x 20, ≤ 15  |
| `ticket_surge`    | tickets of the last 30 days ≥ 2 x the 30 before (and ≥ 3) | 10          |
| `open_bad_feedback` | flags of bad feedback not yet resolved                  | 10 each, ≤ 20 |
| `gone_quiet`      | no contact for 90 days (180: 10)                          | 5           |

A tenant's threshold (`at_risk_below`, default 50) makes a customer "at risk":
`CustomerAtRisk` is published when the score falls below it, once, and not again until
it has come back to the threshold or above.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from helpdesk_contracts import HealthReason


@dataclass(frozen=True)
class Signals:
    """What the score is made of, counted by the database for one customer or organisation."""

    tickets_30d: int = 0
    tickets_prev_30d: int = 0
    tickets_90d: int = 0
    reopens_90d: int = 0
    breaches_30d: int = 0
    csat_answers_90d: int = 0
    csat_bad_90d: int = 0
    csat_avg_30d: float | None = None
    csat_avg_prev_60d: float | None = None
    latest_nps: int | None = None
    open_flags: int = 0
    last_contact_at: datetime | None = None


@dataclass(frozen=True)
class Health:
    score: float
    reasons: tuple[HealthReason, ...]
    """What took points away, the largest first."""


def _reason(code: str, points: float, detail: str) -> HealthReason:
    return HealthReason(code=code, impact=-round(points, 1), detail=detail)


def health_of(s: Signals, now: datetime) -> Health:
    reasons: list[HealthReason] = []
    if s.breaches_30d:
        reasons.append(_reason("sla_breaches", min(30.0, 8.0 * s.breaches_30d),
                               f"{s.breaches_30d} SLA breaches in the last 30 days"))  # fmt: skip
    if s.csat_answers_90d and s.csat_bad_90d:
        share = s.csat_bad_90d / s.csat_answers_90d
        reasons.append(_reason("low_csat", 30.0 * share,
                               f"{s.csat_bad_90d} of {s.csat_answers_90d} CSAT answers below 4"
                               " in the last 90 days"))  # fmt: skip
    if (
        s.csat_avg_30d is not None
        and s.csat_avg_prev_60d is not None
        and s.csat_avg_prev_60d - s.csat_avg_30d >= 1.0
    ):
        reasons.append(_reason("csat_falling", 10.0,
                               f"CSAT fell from {s.csat_avg_prev_60d:.1f} to {s.csat_avg_30d:.1f}"
                               " (average of the last 30 days)"))  # fmt: skip
    if s.latest_nps is not None and s.latest_nps <= 8:
        detractor = s.latest_nps <= 6
        reasons.append(_reason("nps_detractor", 15.0 if detractor else 5.0,
                               f"latest NPS answer {s.latest_nps}"
                               f" ({'detractor' if detractor else 'passive'})"))  # fmt: skip
    if s.tickets_90d and s.reopens_90d:
        rate = s.reopens_90d / s.tickets_90d
        reasons.append(_reason("many_reopens", min(15.0, 20.0 * rate),
                               f"{s.reopens_90d} reopens over {s.tickets_90d} tickets"
                               " in the last 90 days"))  # fmt: skip
    if s.tickets_30d >= 3 and s.tickets_30d >= 2 * s.tickets_prev_30d:
        reasons.append(_reason("ticket_surge", 10.0,
                               f"{s.tickets_30d} tickets in the last 30 days,"
                               f" {s.tickets_prev_30d} in the 30 before"))  # fmt: skip
    if s.open_flags:
        reasons.append(_reason("open_bad_feedback", min(20.0, 10.0 * s.open_flags),
                               f"{s.open_flags} bad feedback not followed up yet"))  # fmt: skip
    if s.last_contact_at is not None and now - s.last_contact_at >= timedelta(days=90):
        days = (now - s.last_contact_at).days
        reasons.append(_reason("gone_quiet", 10.0 if days >= 180 else 5.0,
                               f"no contact for {days} days"))  # fmt: skip
    reasons.sort(key=lambda r: r.impact)
    score = max(0.0, 100.0 + sum(r.impact for r in reasons))
    return Health(round(score, 1), tuple(reasons))


def dropped(previous_at_risk: bool, score: float, threshold: float) -> tuple[bool, bool]:
    """(at risk now, publish CustomerAtRisk now): once per drop below the threshold."""
    at_risk = score < threshold
    return at_risk, at_risk and not previous_at_risk
