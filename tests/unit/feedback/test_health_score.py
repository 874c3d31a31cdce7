"""The health score: each factor, its cap, its reason; at risk once per drop."""

from datetime import UTC, datetime, timedelta

from feedback.domain.health import Signals, dropped, health_of

NOW = datetime(2026, 11, 2, tzinfo=UTC)


def test_a_quiet_happy_customer_is_healthy() -> None:
    health = health_of(Signals(tickets_90d=2, csat_answers_90d=2, last_contact_at=NOW), NOW)
    assert (health.score, health.reasons) == (100.0, ())


def test_each_factor_costs_its_points_and_says_why() -> None:
    health = health_of(
        Signals(breaches_30d=5, csat_answers_90d=4, csat_bad_90d=1, latest_nps=7,
                last_contact_at=NOW - timedelta(days=200)),
        NOW,
    )  # fmt: skip
    assert [(r.code, r.impact) for r in health.reasons] == [
        ("sla_breaches", -30.0), ("gone_quiet", -10.0), ("low_csat", -7.5),
        ("nps_detractor", -5.0),
    ]  # fmt: skip
    assert health.score == 47.5
    assert health.reasons[0].detail == "5 SLA breaches in the last 30 days"


def test_falling_csat_and_a_surge_of_tickets() -> None:
    health = health_of(
        Signals(csat_answers_90d=6, csat_avg_30d=3.0, csat_avg_prev_60d=4.5, tickets_30d=6,
                tickets_prev_30d=3, last_contact_at=NOW),
        NOW,
    )  # fmt: skip
    assert sorted(r.code for r in health.reasons) == ["csat_falling", "ticket_surge"]
    calm = health_of(Signals(tickets_30d=5, tickets_prev_30d=3, last_contact_at=NOW), NOW)
    assert calm.reasons == ()


def test_the_score_never_goes_below_zero() -> None:
    worst = Signals(
        breaches_30d=9, csat_answers_90d=3, csat_bad_90d=3, csat_avg_30d=1.0,
        csat_avg_prev_60d=5.0, latest_nps=0, tickets_30d=9, tickets_90d=9, reopens_90d=9,
        open_flags=5, last_contact_at=NOW - timedelta(days=400),
    )  # fmt: skip
    assert health_of(worst, NOW).score == 0.0


def test_at_risk_is_announced_once_per_drop() -> None:
    assert dropped(False, 40.0, 50.0) == (True, True)
    assert dropped(True, 30.0, 50.0) == (True, False)  # still down: not again
    assert dropped(True, 50.0, 50.0) == (False, False)  # recovered
    assert dropped(False, 45.0, 50.0) == (True, True)  # a new drop
