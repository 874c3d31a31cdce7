"""The feedback service: CSAT/CSI, NPS and CES surveys, scores, bad feedback, customer health.

Not built yet: this package only reserves the service's place in the workspace. It will
consume `ticketing.tickets.v2` through `helpdesk_runtime` like the ticketing service does.
"""
