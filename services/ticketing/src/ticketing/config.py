"""The ticketing service's settings."""

from pydantic import SecretStr

from helpdesk_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "ticketing"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/ticketing")
    intake_group_id: str = "ticketing-intake"
    sla_group_id: str = "ticketing-sla"
    directory_group_id: str = "ticketing-directory-sync"
