"""Goals: how far a figure is from its target, and the current period."""

from datetime import UTC, datetime

from feedback.domain.goals import GoalMetric, Period, period_start, progress


def test_a_higher_is_better_goal_is_met_or_short_by_a_share_of_its_target() -> None:
    assert progress(GoalMetric.CSAT, 90.0, 95.0).met is True
    short = progress(GoalMetric.CSAT, 90.0, 45.0)
    assert (short.met, short.gap) == (False, 0.5)
    assert progress(GoalMetric.NPS, 40.0, -60.0).gap == 0.5  # 100 points of NPS's 200


def test_a_time_goal_is_met_when_the_figure_is_at_or_below_its_target() -> None:
    assert progress(GoalMetric.FIRST_RESPONSE_MEDIAN, 3600.0, 3600.0).met is True
    late = progress(GoalMetric.RESOLUTION_P90, 3600.0, 9000.0)
    assert (late.met, late.gap) == (False, 1.5)


def test_nothing_measured_is_neither_met_nor_missed() -> None:
    assert progress(GoalMetric.CES, 5.0, None).met is None


def test_periods_start_on_monday_the_first_and_the_quarter() -> None:
    now = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # a Thursday
    assert period_start(Period.WEEK, now) == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_start(Period.MONTH, now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_start(Period.QUARTER, now) == datetime(2026, 10, 1, tzinfo=UTC)
