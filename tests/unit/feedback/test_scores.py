"""Scores from counts: CSAT %, CSI, NPS, CES and the response rate."""

from feedback.domain.scores import Counts, score_of
from helpdesk_contracts import SurveyKind


def test_csat_is_the_share_of_good_answers_and_csi_the_average_on_0_to_100() -> None:
    # answers 5, 4, 4, 2, 1: 3 good of 5; average 3.2
    score = score_of(SurveyKind.CSAT, Counts(answers=5, total=16, good=3, invited=10, answered=5))
    assert score.score == 60.0
    assert score.average == 3.2
    assert score.csi == 55.0
    assert score.response_rate == 0.5


def test_nps_is_promoters_less_detractors() -> None:
    # 10, 9, 8, 3: two promoters, one detractor of four
    score = score_of(SurveyKind.NPS, Counts(answers=4, total=30, promoters=2, detractors=1))
    assert score.score == 25.0
    assert score.csi is None


def test_ces_is_the_average_effort() -> None:
    assert score_of(SurveyKind.CES, Counts(answers=3, total=17)).score == 5.67


def test_no_answers_is_no_score_not_zero() -> None:
    score = score_of(SurveyKind.CSAT, Counts(invited=4))
    assert (score.score, score.average, score.csi, score.answers) == (None, None, None, 0)
    assert score.response_rate == 0.0
