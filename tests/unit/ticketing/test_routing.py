from datetime import UTC, datetime, timedelta

from ticketing.domain import Candidate, Strategy, choose

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def c(
    agent: str, *, open_tickets: int = 0, minutes_ago: int | None = None, available: bool = True
) -> Candidate:
    last = None if minutes_ago is None else T0 - timedelta(minutes=minutes_ago)
    return Candidate(agent, available, open_tickets, last)


def test_round_robin_takes_whoever_waited_longest_and_never_assigned_first() -> None:
    assert choose(Strategy.ROUND_ROBIN, [c("a", minutes_ago=1), c("b", minutes_ago=5)]) == "b"
    assert choose(Strategy.ROUND_ROBIN, [c("a", minutes_ago=1), c("b")]) == "b"
    assert choose(Strategy.ROUND_ROBIN, [c("b"), c("a")]) == "a"  # a stable order on ties


def test_least_loaded_takes_the_fewest_open_tickets_then_the_longest_wait() -> None:
    team = [
        c("a", open_tickets=3),
        c("b", open_tickets=1, minutes_ago=1),
        c("c", open_tickets=1, minutes_ago=9),
    ]
    assert choose(Strategy.LEAST_LOADED, team) == "c"


def test_unavailable_agents_are_skipped_and_nobody_available_gives_none() -> None:
    assert choose(Strategy.ROUND_ROBIN, [c("a", available=False), c("b", minutes_ago=1)]) == "b"
    assert choose(Strategy.LEAST_LOADED, [c("a", available=False)]) is None
    assert choose(Strategy.ROUND_ROBIN, []) is None
