"""Which status changes are legal, and the events that make each one.

new → open → pending (waiting on the customer) → on_hold (waiting on a third party) →
solved → closed. The working statuses move freely among themselves; solved is left only by
reopening (to open) or closing; closed is final.
"""

from helpdesk_contracts import TicketStatus

WORKING = frozenset(
    {TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD}
)
SETTABLE = frozenset({TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD})


def refusal(current: TicketStatus, target: TicketStatus) -> str | None:
    """Why `current` cannot become `target`, or None when it can (possibly via reopening)."""
    if current is TicketStatus.CLOSED:
        return "the ticket is closed; a closed ticket cannot change (open a follow-up instead)"
    if target is TicketStatus.NEW:
        return "a ticket cannot go back to new"
    if target is TicketStatus.CLOSED and current is not TicketStatus.SOLVED:
        return f"only a solved ticket can be closed; this one is {current.value}"
    return None
