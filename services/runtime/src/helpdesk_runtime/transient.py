"""Which errors are the infrastructure's, not the message's (or timer's) being handled.

A transient error is retried, with backoff, for as long as it lasts: it is never a reason
to dead-letter a message or count a failed attempt against a timer. Only an error a
message causes on its own merits is. Classified by kind, not by a list of classes that
misses one: every connection, pool and protocol error of the client, and the SQLSTATE
classes of a database that is unreachable, shutting down, out of resources, read-only
(after a failover), or that rolled a transaction back to serialise it.
"""

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from helpdesk_runtime.eventstore import ConcurrencyError

# 08 connection exception, 40 transaction rollback (serialisation, deadlock), 53
# insufficient resources (disk full, too many connections), 57 operator intervention
# (admin shutdown, crash shutdown, cannot connect now), 58 system error (I/O).
_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# 25006 read-only transaction (a standby, or a primary being failed over); 55P03 lock not
# available (lock_timeout); 55006 object in use.
_SQLSTATES = frozenset({"25006", "55P03", "55006"})
# A broker that refuses what we send for good is not an outage.
_PERMANENT_KAFKA: tuple[type[KafkaError], ...] = (MessageSizeTooLargeError,)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says the database or the broker is unavailable right now."""
    if isinstance(exc, KafkaError):
        return not isinstance(exc, _PERMANENT_KAFKA)
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | ConcurrencyError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.InternalClientError,  # e.g. a pool's connection torn mid-reset
    ):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(sqlstate, str):
        return sqlstate[:2] in _SQLSTATE_CLASSES or sqlstate in _SQLSTATES
    return False
