"""The ticketing domain: pure rules, no I/O."""

from ticketing.domain.fields import FieldDefinition, FieldType, check_fields
from ticketing.domain.macros import CannedResponse, apply_canned_response, render
from ticketing.domain.relations import link_incident, merge, solve_problem
from ticketing.domain.routing import Candidate, Strategy, choose
from ticketing.domain.ticket import OpenTicket, Ticket, TicketError

__all__ = [
    "Candidate",
    "CannedResponse",
    "FieldDefinition",
    "FieldType",
    "OpenTicket",
    "Strategy",
    "Ticket",
    "TicketError",
    "apply_canned_response",
    "check_fields",
    "choose",
    "link_incident",
    "merge",
    "render",
    "solve_problem",
]
