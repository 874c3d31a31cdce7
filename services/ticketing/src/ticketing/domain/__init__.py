"""The ticketing domain: pure rules, no I/O."""

from ticketing.domain.relations import link_incident, merge, solve_problem
from ticketing.domain.ticket import OpenTicket, Ticket, TicketError

__all__ = ["OpenTicket", "Ticket", "TicketError", "link_incident", "merge", "solve_problem"]
