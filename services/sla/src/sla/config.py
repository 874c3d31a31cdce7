"""The SLA service's settings."""

from pydantic import SecretStr

from helpdesk_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "sla"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/sla")
    tickets_group_id: str = "sla-tickets"
