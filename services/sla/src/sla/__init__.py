"""The sla service: SLA policies, business calendars, deadlines, warnings, breaches and compliance.

Not built yet: this package only reserves the service's place in the workspace. It will
consume `ticketing.tickets.v1` through `helpdesk_runtime` like the ticketing service does.
"""
