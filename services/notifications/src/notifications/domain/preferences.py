"""Each person's contact preferences, and when and through what a notice reaches them."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    """A JSON POST to the person's (or their tool's) URL, signed with HMAC-SHA256."""
    MESSENGER = "messenger"
    """A chat message through the configured messenger adapter (Telegram's Bot API)."""


@dataclass(frozen=True)
class Preferences:
    """How a person wants to be reached; a person with no row gets the defaults."""

    channels: tuple[Channel, ...] = (Channel.EMAIL,)
    """Preferred first, then the fallbacks, in order."""
    language: str | None = None
    time_zone: str = "UTC"
    quiet_from: time | None = None
    quiet_until: time | None = None
    """Non-urgent messages wait until `quiet_until` (local time) when they fall in between."""
    opted_out: frozenset[str] = frozenset()
    """Categories (templates) this person does not want; transactional messages ignore it."""
    addresses: dict[Channel, str] = field(default_factory=dict)
    """Where to reach them per channel (agents' addresses; a customer's email comes sealed
    with the ticket instead)."""

    def channel(self, reachable: Iterable[Channel]) -> Channel | None:
        """The first channel in their order that they can be reached on."""
        can = set(reachable)
        return next((c for c in self.channels if c in can), None)

    def after_quiet_hours(self, at: datetime) -> datetime:
        """`at`, or the end of the quiet hours it falls in."""
        if self.quiet_from is None or self.quiet_until is None:
            return at
        zone = ZoneInfo(self.time_zone)
        local = at.astimezone(zone)
        start, end = self.quiet_from, self.quiet_until
        now = local.time()
        overnight = start > end  # 22:00-07:00
        inside = (start <= now or now < end) if overnight else (start <= now < end)
        if not inside:
            return at
        day = local.date() + timedelta(days=1 if overnight and now >= start else 0)
        return datetime.combine(day, end, tzinfo=zone).astimezone(at.tzinfo)


@dataclass(frozen=True)
class BusinessHours:
    """When a tenant's agents work: escalations wait for it unless the ticket is urgent."""

    time_zone: str = "UTC"
    days: frozenset[int] = frozenset(range(5))
    """Weekdays, Monday = 0."""
    start: time = time(9)
    end: time = time(18)

    def next_open(self, at: datetime) -> datetime:
        """`at` if within business hours, else when they next begin."""
        zone = ZoneInfo(self.time_zone)
        local = at.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, self.start, tzinfo=zone)
            closes = datetime.combine(day, self.end, tzinfo=zone)
            if local < closes:
                return max(local, opens).astimezone(at.tzinfo)
        return at  # no business days configured: never hold anything back
