"""The tenants a deployment serves: `ticketing.tenants.v1`.

Ticketing keeps the registry (ops run `python -m ticketing tenants add|suspend|resume`) and
publishes each tenant's registration as it stands after every change. The topic is
compacted and keyed by the tenant's stream (`tenant_stream`), so it always holds the latest
record of every tenant: a service that reads it from the beginning knows every tenant, and
refuses the tokens of tenants it does not know or that are suspended.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from helpdesk_contracts.envelope import Event, UtcDatetime
from helpdesk_contracts.values import Name

_TENANTS = UUID("5c1f0d4e-8a57-4c8e-9d1b-3f0b6a2e7c41")


def tenant_stream(tenant_id: str) -> UUID:
    """The `aggregate_id` (and Kafka key) of a tenant's records."""
    return uuid5(_TENANTS, tenant_id)


class TenantChanged(Event):
    """A tenant's registration after a change: registered, renamed, suspended or resumed.
    The envelope's `tenant_id` is the tenant; its `aggregate_id` is `tenant_stream` of it.

    While `suspended_at` is set the tenant keeps its data, but its agents' tokens are
    refused (and ticketing dead-letters its intake), until it is resumed."""

    event_type = "TenantChanged"

    name: Name
    suspended_at: UtcDatetime | None = None
