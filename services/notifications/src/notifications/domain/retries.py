"""When a delivery that failed for now is tried again, and when it is given up."""

import random
from dataclasses import dataclass
from enum import StrEnum


class Failure(StrEnum):
    TEMPORARY = "temporary"
    """The provider is away or said "try later" (SMTP 4xx): retried with backoff."""
    PERMANENT = "permanent"
    """The provider refused it for good (SMTP 5xx): a dead letter at once."""


@dataclass(frozen=True)
class Backoff:
    """`base_s` doubling up to `max_s`, at most `attempts` tries in all. The jitter ("equal
    jitter": half fixed, half random) spreads the retries of deliveries that failed
    together, so a provider back from an outage is not hit by all of them at once."""

    base_s: float = 30.0
    max_s: float = 3600.0
    attempts: int = 8

    def next_delay_s(self, failed_attempts: int, rng: random.Random | None = None) -> float | None:
        """Seconds until the next try after `failed_attempts` failures; None: give up."""
        if failed_attempts >= self.attempts:
            return None
        ceiling = min(self.max_s, self.base_s * 2 ** (failed_attempts - 1))
        jitter: float = (rng or random).uniform(0, ceiling / 2)
        return float(ceiling / 2 + jitter)
