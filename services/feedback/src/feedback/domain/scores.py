"""Scores from counts: what a support lead reads on a dashboard.

The database counts (answers, their sum, good answers, promoters, detractors, invitations
sent and answered) for each group of answers; this module turns counts into scores, so the
definitions live in one place:

- CSAT % : share of CSAT answers of 4 or 5 (good, in the good/bad scale);
- CSI    : the average CSAT answer on a 0..100 scale ((average - 1) / 4 * 100);
- NPS    : % promoters (9-10) - % detractors (0-6), from -100 to 100;
- CES    : the average effort answer (1..7, higher is easier);
- response rate: answered invitations / invitations sent.

Counts are always given beside the scores, so a score from three answers is seen as such.
"""

from dataclasses import dataclass

from helpdesk_contracts import SCORE_RANGES, SurveyKind

CSAT_GOOD = 4
NPS_PROMOTER = 9
NPS_DETRACTOR = 6


@dataclass(frozen=True)
class Counts:
    answers: int = 0
    total: int = 0
    """Sum of the scores."""
    good: int = 0
    """CSAT answers of CSAT_GOOD or more."""
    promoters: int = 0
    detractors: int = 0
    invited: int = 0
    answered: int = 0
    """Of those invited, how many answered."""


@dataclass(frozen=True)
class Score:
    survey: SurveyKind
    answers: int
    score: float | None
    """CSAT %, NPS or CES average by the survey; None without answers."""
    average: float | None
    csi: float | None
    """CSAT only: the average on 0..100."""
    invited: int
    response_rate: float | None


def score_of(kind: SurveyKind, counts: Counts) -> Score:
    n = counts.answers
    average = counts.total / n if n else None
    csi = None
    if kind is SurveyKind.CSAT:
        value = 100.0 * counts.good / n if n else None
        low, high = SCORE_RANGES[kind]
        csi = (average - low) / (high - low) * 100.0 if average is not None else None
    elif kind is SurveyKind.NPS:
        value = 100.0 * (counts.promoters - counts.detractors) / n if n else None
    else:
        value = average
    rate = counts.answered / counts.invited if counts.invited else None
    return Score(kind, n, _round(value), _round(average), _round(csi), counts.invited,
                 _round(rate, 4))  # fmt: skip


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
