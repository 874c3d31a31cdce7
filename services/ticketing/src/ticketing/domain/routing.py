"""Automatic assignment: which available agent of a group gets the next ticket."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

_NEVER = datetime.min.replace(tzinfo=UTC)


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    """Turn by turn: the available agent assigned longest ago (or never)."""
    LEAST_LOADED = "least_loaded"
    """The available agent with the fewest unsolved tickets; ties go turn by turn."""


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    available: bool
    open_tickets: int
    last_assigned_at: datetime | None


def choose(strategy: Strategy, candidates: Iterable[Candidate]) -> str | None:
    """The agent to assign, or None when nobody in the group is available."""
    available = [c for c in candidates if c.available]
    if not available:
        return None

    def turn(c: Candidate) -> tuple[datetime, str]:
        return (c.last_assigned_at or _NEVER, c.agent_id)

    if strategy is Strategy.LEAST_LOADED:
        return min(available, key=lambda c: (c.open_tickets, *turn(c))).agent_id
    return min(available, key=turn).agent_id
