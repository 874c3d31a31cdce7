"""A notice for one person becomes a delivery: which channel, when, or why not at all."""

from dataclasses import dataclass
from datetime import datetime

from notifications.domain.notices import Rule
from notifications.domain.preferences import BusinessHours, Channel, Preferences


@dataclass(frozen=True)
class Planned:
    channel: str
    due_at: datetime
    skipped: str | None = None
    """Why nothing is sent (recorded as a cancelled delivery, for the log)."""


def plan(
    rule: Rule, recipient: str, prefs: Preferences, *, urgent: bool, now: datetime,
    hours: BusinessHours | None,
) -> Planned:  # fmt: skip
    """When and through what `recipient` gets this rule's message.

    A customer can always be written to by email (the address comes sealed with their
    ticket); anyone else needs an address for a channel. Opting out and quiet hours do not
    apply to transactional messages, and nothing waits when the ticket is urgent."""
    preferred = prefs.channels[0].value if prefs.channels else Channel.EMAIL.value
    if not rule.transactional and rule.category in prefs.opted_out:
        return Planned(preferred, now, f"opted out of {rule.category}")
    reachable = set(prefs.addresses)
    if recipient.startswith("customer:"):
        reachable.add(Channel.EMAIL)
    channel = prefs.channel(reachable)
    if channel is None:
        return Planned(preferred, now, f"no address for {recipient} in any of their channels")
    due = now
    if rule.escalation and not urgent and hours is not None:
        due = hours.next_open(due)
    if not rule.transactional and not urgent:
        due = prefs.after_quiet_hours(due)
    return Planned(channel.value, due)
