"""Prometheus metrics every service exports at `/metrics`.

One `Metrics` per service runtime, on a registry of its own (so two runtimes in one test
process never mix their figures). The pieces that do the work count into it; gauges that
need the database (outbox backlog, pending timers, pool use) are refreshed when scraped.
"""

import re
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# The `_created` series double what is exported and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Label values from the wire are bounded: a publisher inventing event types cannot grow
# the number of series without limit.
_MAX_EVENT_TYPES = 200
_EVENT_TYPE = re.compile(r"^[A-Z][A-Za-z0-9]{0,99}$")

_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_AGE = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
_BATCH = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)

Refresher = Callable[[], Awaitable[None]]


class Metrics:
    """The instruments of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "helpdesk_events_consumed", "Events applied by a consumer (duplicates excluded)",
            ["consumer", "topic", "event_type"], registry=r,
        )  # fmt: skip
        self.duplicates = Counter(
            "helpdesk_events_duplicate", "Events a consumer had already applied (redeliveries)",
            ["consumer", "topic"], registry=r,
        )  # fmt: skip
        self.skipped = Counter(
            "helpdesk_events_skipped",
            "Events of a type the consumer does not handle (tolerant reader): unknown to its"
            " contracts release, or not consumed here",
            ["consumer", "topic", "event_type", "reason"], registry=r,
        )  # fmt: skip
        self.dead_lettered = Counter(
            "helpdesk_events_dead_lettered", "Records sent to the dead-letter topic",
            ["consumer", "topic", "error_type"], registry=r,
        )  # fmt: skip
        self.produced = Counter(
            "helpdesk_events_produced", "Events published by the outbox relay",
            ["topic", "event_type"], registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "helpdesk_consumer_batch_size", "Records per consumed batch",
            ["consumer"], buckets=_BATCH, registry=r,
        )  # fmt: skip
        self.handler_seconds = Histogram(
            "helpdesk_consumer_handler_seconds",
            "Time to apply one batch (decode, transaction, dead letters)",
            ["consumer"], buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.event_age = Histogram(
            "helpdesk_event_age_seconds",
            "Age of an event when consumed: now minus its occurred_at",
            ["consumer", "topic"], buckets=_AGE, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "helpdesk_consumer_lag",
            "Records behind the partition's end, as of the consumer's last batch from it",
            ["consumer", "topic", "partition"], registry=r,
        )  # fmt: skip
        self.outbox_backlog = Gauge(
            "helpdesk_outbox_backlog", "Stored events not yet published", ["relay"], registry=r
        )
        self.publish_seconds = Histogram(
            "helpdesk_outbox_publish_seconds",
            "Time to publish one relay batch until the broker acknowledged it",
            ["relay"], buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.publish_delay = Histogram(
            "helpdesk_outbox_delay_seconds",
            "From an event's commit to its publication by the relay",
            ["relay"], buckets=_AGE, registry=r,
        )  # fmt: skip
        self.watermark_lag = Gauge(
            "helpdesk_watermark_lag_seconds",
            "How far the last watermark sent is behind the wall clock",
            ["relay"], registry=r,
        )  # fmt: skip
        self.timers_pending = Gauge(
            "helpdesk_timers_pending",
            "Durable timers scheduled and not yet fired (PostgreSQL's estimate)",
            registry=r,
        )
        self.timers_overdue = Gauge(
            "helpdesk_timers_overdue",
            "Timers due and not fired yet: grows when no scheduler fires (lateness cannot show it)",
            registry=r,
        )
        self.timers_fired = Counter(
            "helpdesk_timers_fired", "Durable timers fired", ["kind"], registry=r
        )
        self.timer_lateness = Histogram(
            "helpdesk_timer_lateness_seconds", "How late a timer fired: fired at minus due at",
            ["kind"], buckets=_AGE, registry=r,
        )  # fmt: skip
        self.http_requests = Counter(
            "helpdesk_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.http_seconds = Histogram(
            "helpdesk_http_request_seconds", "Time to answer an HTTP request",
            ["method", "route"], buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.pool_size = Gauge(
            "helpdesk_db_pool_connections", "Database pool connections", ["state"], registry=r
        )
        self.pool_max = Gauge(
            "helpdesk_db_pool_max_connections", "The pool's configured maximum", registry=r
        )
        self.job_restarts = Gauge(
            "helpdesk_job_restarts", "Times a background job was restarted", ["job"], registry=r
        )
        self._event_types: set[str] = set()
        self._refreshers: list[Refresher] = []

    def event_type_label(self, event_type: str) -> str:
        """The event type as a label value, or "other" beyond the bound."""
        if event_type in self._event_types:
            return event_type
        if len(self._event_types) >= _MAX_EVENT_TYPES or not _EVENT_TYPE.match(event_type):
            return "other"
        self._event_types.add(event_type)
        return event_type

    def on_refresh(self, refresher: Refresher) -> None:
        """Run `refresher` before each scrape (gauges read from the database)."""
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        for refresher in self._refreshers:
            await refresher()
