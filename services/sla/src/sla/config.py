"""The SLA service's settings."""

from pydantic import Field, SecretStr

from helpdesk_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "sla"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/sla")
    tickets_group_id: str = "sla-tickets"
    # The topics of the contracts; other names only for benchmarks and tests of their own.
    tickets_topic: str = "ticketing.tickets.v2"
    sla_topic: str = "sla.events.v1"
    # A partition whose watermark is this far behind while breaches wait on it is stalled:
    # an error is logged (and helpdesk_sla_watermark_lag_seconds shows it).
    watermark_stall_s: float = Field(default=60.0, gt=0)
