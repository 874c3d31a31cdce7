"""The ticketing domain: pure rules, no I/O."""

from ticketing.domain.macros import CannedResponse, apply_canned_response, render
from ticketing.domain.relations import link_incident, merge, solve_problem
from ticketing.domain.ticket import OpenTicket, Ticket, TicketError

__all__ = [
    "CannedResponse",
    "OpenTicket",
    "Ticket",
    "TicketError",
    "apply_canned_response",
    "link_incident",
    "merge",
    "render",
    "solve_problem",
]
