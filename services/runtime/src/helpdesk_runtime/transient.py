"""Errors of the infrastructure, not of the message or timer being handled: retried with
backoff, never blamed on (dead-lettered or counted against) what was being handled."""

import asyncpg
from aiokafka.errors import KafkaError

from helpdesk_runtime.eventstore import ConcurrencyError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionError,
    KafkaError,
    ConcurrencyError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
)
