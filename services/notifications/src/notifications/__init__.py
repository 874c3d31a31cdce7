"""The notifications service: acknowledgements, alerts and survey invitations, per channel.

Not built yet: this package only reserves the service's place in the workspace. It will
consume `ticketing.tickets.v2` through `helpdesk_runtime` like the ticketing service does.
"""
