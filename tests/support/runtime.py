"""Run a ServiceRuntime against the test servers."""

from pydantic import SecretStr

from helpdesk_runtime.settings import ServiceSettings


def service_settings(
    database_url: str, kafka_bootstrap: str, **overrides: object
) -> ServiceSettings:
    values: dict[str, object] = {
        "service_name": "tests",
        "database_url": SecretStr(database_url),
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_create_topics": False,
        "consumer_batch_timeout_ms": 50,
        "consumer_retry_backoff_s": 0.05,
        "outbox_poll_interval_s": 0.1,
        "log_format": "console",
        "shutdown_grace_s": 5.0,
    }
    values.update(overrides)
    return ServiceSettings.model_validate(values)
