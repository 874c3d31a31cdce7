"""One service process: pool, producer, Kafka subscribers, background jobs, HTTP lifespan."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from helpdesk_contracts import TOPICS, dead_letter_topic, rejections_topic
from helpdesk_contracts.pii import SUBJECT_KEYS_PARTITIONS, SUBJECT_KEYS_TOPIC
from helpdesk_runtime import tenancy
from helpdesk_runtime.blobs import BlobStore, blob_store
from helpdesk_runtime.consumer import BatchConsumer, BatchHandler
from helpdesk_runtime.db import (
    Component,
    Connection,
    Migration,
    create_pool,
    migrate,
    runtime_migrations,
)
from helpdesk_runtime.deadletters import DeadLetterPublisher
from helpdesk_runtime.event_log import Shard
from helpdesk_runtime.feed import AppendFeed
from helpdesk_runtime.jobs import Job, JobSupervisor
from helpdesk_runtime.kafka import Producer, TopicSpec, ensure_topics, kafka_security
from helpdesk_runtime.key_distribution import KeyRole, SubjectKeyPublisher, SubjectKeyReplica
from helpdesk_runtime.logging import broker_outage, configure_logging, get_logger
from helpdesk_runtime.metrics import Metrics
from helpdesk_runtime.outbox import OutboxRelay, Router, Source
from helpdesk_runtime.personal_data import SubjectKeys, seal_plain_events
from helpdesk_runtime.settings import Part, ServiceSettings
from helpdesk_runtime.subscriptions import Outage, subscribe_batch
from helpdesk_runtime.telemetry import Tracer
from helpdesk_runtime.tenants import (
    TENANTS_TOPIC,
    TenantGate,
    TenantPublisher,
    TenantRegistry,
    TenantReplica,
)
from helpdesk_runtime.timer_scheduler import TimerLane, TimerScheduler
from helpdesk_runtime.timers import TimerHandler, overdue_count, pending_count
from helpdesk_runtime.watermarks import WatermarkPublisher

log = get_logger(__name__)

_WRITABLE = "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'"


def _settle_heap() -> None:
    """Take what start-up left alive out of the garbage collector's sight, once.

    Modules, the app, the clients and pools live as long as the process, and every full
    collection walked them again: under a spike that was a quarter of the intake's CPU
    (`make bench`, issue 9). Frozen objects are still freed by reference counting.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


@dataclass(frozen=True)
class ConsumerSpec:
    topic: str
    group_id: str
    handler: BatchHandler
    accepts: frozenset[str]
    description: str = ""
    rejections: bool = False
    """Tell the publisher why a message was refused, on `<topic>.rejections`."""


@dataclass(frozen=True)
class KafkaAccess:
    """Topics a service reads, topics it writes, and the consumer groups it joins."""

    reads: frozenset[str]
    writes: frozenset[str]
    groups: frozenset[str]


JobFactory = Callable[["ServiceRuntime"], Awaitable[None]]
"""A service's own background job: a coroutine over the started runtime, run until cancelled."""


class ServiceRuntime:
    """Owns the service's connections; started and stopped by `lifespan`."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Sequence[Migration] = (),
        topics: Sequence[TopicSpec] = (),
        route: Router | None = None,
        publish_from: Source = Source.EVENTS,
        consumers: Sequence[ConsumerSpec] = (),
        jobs: dict[str, JobFactory] | None = None,
        timers: Mapping[str, TimerHandler] | None = None,
        timer_lanes: Sequence[Collection[str] | TimerLane] = (),
        watermarks: Sequence[str] = (),
        blobs: bool = False,
        subject_keys: SubjectKeys | None = None,
        key_role: KeyRole = KeyRole.OWNER,
        tenants: TenantRegistry | None = None,
    ) -> None:
        if publish_from is Source.OUTBOX and route is None:
            raise ValueError("an outbox needs a route (event type -> topic) to be published")
        if watermarks and route is None:
            raise ValueError("watermarks say what a relay published: they need a route")
        self.settings = settings
        self.metrics = Metrics()
        self.tracer = Tracer.for_service(settings)
        self.metrics.on_refresh(self._refresh_metrics)
        self._timer_handlers = dict(timers or {})
        # Each lane's kinds are fired by a scheduler of their own, so a burst of one kind
        # (a survey campaign) never delays the others (acknowledgements); the kinds in no
        # lane share one scheduler.
        laned = [
            lane if isinstance(lane, TimerLane) else TimerLane(frozenset(lane))
            for lane in timer_lanes
        ]
        in_lanes: set[str] = set().union(*(lane.kinds for lane in laned))
        if unknown := in_lanes - set(self._timer_handlers):
            raise ValueError(f"timer lanes name kinds with no handler: {sorted(unknown)}")
        rest = TimerLane(frozenset(self._timer_handlers) - in_lanes)
        self._timer_lanes = [lane for lane in (rest, *laned) if lane.kinds]
        self.timers: TimerScheduler | None = None
        """The scheduler of the kinds in no lane (else the first lane's)."""
        self.timer_schedulers: list[TimerScheduler] = []
        # Only the runtime's tables this service uses. Every service keeps configuration
        # that admins change, so every one has the audit log.
        components = {Component.AUDIT}
        if route is not None:
            components.add(
                Component.EVENT_STORE if publish_from is Source.EVENTS else Component.OUTBOX
            )
        if consumers:
            components.add(Component.INBOX)
        if self._timer_handlers:
            components.add(Component.TIMERS)
        if watermarks:
            components.add(Component.WATERMARKS)
        if blobs and settings.blob_store == "postgres":
            components.add(Component.BLOBS)
        if subject_keys is not None:
            components.add(Component.SUBJECT_KEYS)
        if tenants is TenantRegistry.REPLICA:
            components.add(Component.TENANT_REPLICA)
        if tenants is TenantRegistry.REPLICA or (
            subject_keys is not None and key_role is KeyRole.REPLICA
        ):
            components.add(Component.REPLICAS)
        self.components = frozenset(components)
        self._keeps_blobs = blobs
        self._blobs: BlobStore | None = None
        # Its events hold personal data, sealed with the subjects' keys (personal_data.py):
        # it makes and publishes the keys (the owner), or keeps a copy to open what it reads.
        self.subject_keys = subject_keys
        self.key_role = key_role
        self.key_replica: SubjectKeyReplica | None = None
        self._watermark_topics = tuple(watermarks)
        self.watermarks: WatermarkPublisher | None = None
        self.migrations = [*runtime_migrations(components), *migrations]
        self._own_jobs = jobs or {}
        # Who may call: the owner of the registry, or a replica, refuses other tenants.
        self._tenants = tenants
        self.tenant_gate = TenantGate(lambda: self.pool) if tenants is not None else None
        if tenants is not None and TENANTS_TOPIC not in {t.name for t in topics}:
            registry = TOPICS[TENANTS_TOPIC]
            topics = [*topics, TopicSpec(TENANTS_TOPIC, registry.partitions, compacted=True)]
        if subject_keys is not None and SUBJECT_KEYS_TOPIC not in {t.name for t in topics}:
            # The subjects' keys, for the services entitled to read personal data.
            keys_topic = TopicSpec(SUBJECT_KEYS_TOPIC, SUBJECT_KEYS_PARTITIONS, compacted=True)
            topics = [*topics, keys_topic]
        self._topics = topics
        self._route = route
        self._publish_from = publish_from
        self.kafka_security = kafka_security(settings)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=self.kafka_security,
            client_id=settings.client_id,
            graceful_timeout=settings.consumers_shutdown_s,
            retry_backoff_ms=settings.kafka_retry_backoff_ms,
            # Not "faststream": that logger gets FastStream's own stdout handler at import.
            logger=logging.getLogger("helpdesk.broker"),
            # "Received"/"Processed" for every batch is noise at month-start volume.
            log_level=logging.DEBUG,
        )
        self.producer = Producer(
            settings.kafka_bootstrap_servers,
            settings.client_id,
            settings.kafka_max_message_bytes,
            self.kafka_security,
        )
        self._pool: asyncpg.Pool | None = None
        self.feed: AppendFeed | None = None
        self.relays: list[OutboxRelay] = []
        self.jobs = JobSupervisor([])
        # One per (group, topic): a group may read several topics, each with its handler.
        self.consumers: dict[tuple[str, str], BatchConsumer] = {}
        self.outages: list[Outage] = []
        self._connecting: asyncio.Task[None] | None = None
        self.kafka_connected = asyncio.Event()
        self._consumer_specs = list(consumers)
        if settings.runs(Part.CONSUMERS):
            for spec in consumers:
                self._subscribe(spec)
        self.started = False

    def kafka_access(self) -> KafkaAccess:
        """What the service reads and writes on Kafka, and its consumer groups: all the
        ACLs its Kafka user needs, and no more (deploy/k8s is checked against this)."""
        specs = self._consumer_specs
        reads = {s.topic for s in specs}
        writes = {dead_letter_topic(s.topic) for s in specs}
        writes |= {rejections_topic(s.topic) for s in specs if s.rejections}
        writes |= {t.name for t in TOPICS.values()
                   if self.settings.service_name in t.producers}  # fmt: skip
        if self.subject_keys is not None:
            owner = self.key_role is KeyRole.OWNER
            (writes if owner else reads).add(SUBJECT_KEYS_TOPIC)
        if self._tenants is not None:
            (writes if self._tenants is TenantRegistry.OWNER else reads).add(TENANTS_TOPIC)
        return KafkaAccess(
            frozenset(reads), frozenset(writes), frozenset(s.group_id for s in specs)
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the service runtime is not started")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection in a transaction: an API call's unit of work."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @property
    def blobs(self) -> BlobStore:
        """Where the service's files are kept (built with `blobs=True`)."""
        if self._blobs is None:
            raise RuntimeError("the service runtime is not started, or keeps no files")
        return self._blobs

    def _subscribe(self, spec: ConsumerSpec) -> None:
        consumer: BatchConsumer | None = None

        def resolve() -> BatchConsumer:  # built on the first batch: it needs the pool
            nonlocal consumer
            if consumer is None:
                consumer = BatchConsumer(
                    name=spec.group_id,
                    pool=self.pool,
                    handler=spec.handler,
                    dead_letters=DeadLetterPublisher(
                        self.producer, spec.group_id, rejections=spec.rejections
                    ),
                    accepts=spec.accepts,
                    max_message_bytes=self.settings.consumer_max_message_bytes,
                    retry_attempts=self.settings.consumer_retry_attempts,
                    retry_backoff_s=self.settings.consumer_retry_backoff_s,
                    metrics=self.metrics,
                    tracer=self.tracer,
                )
                self.consumers[(spec.group_id, spec.topic)] = consumer
            return consumer

        members = self.settings.consumer_concurrency
        for member in range(members):
            name = f"{spec.group_id}:{spec.topic}" + (f"#{member + 1}" if members > 1 else "")
            outage = Outage(name, self.dependencies_available)  # one per client it pauses
            self.outages.append(outage)
            subscribe_batch(
                self.broker,
                topic=spec.topic,
                group_id=spec.group_id,
                consumer=resolve,
                outage=outage,
                max_records=self.settings.consumer_batch_size,
                batch_timeout_ms=self.settings.consumer_batch_timeout_ms,
                max_poll_interval_ms=self.settings.consumer_max_poll_interval_ms,
                description=spec.description,
            )

    async def start(self) -> None:
        s = self.settings
        configure_logging(s.service_name, s.log_level, s.log_format)
        self._pool = await create_pool(
            s.database_url.get_secret_value(),
            min_size=s.database_pool_min,
            max_size=s.database_pool_max,
        )
        await self.migrate(self._pool)
        if self._keeps_blobs:
            self._blobs = blob_store(s, self._pool)
        self.feed = AppendFeed(self._pool)
        self.feed.start()
        # Kafka in the background: joining the consumer group can take a session timeout
        # (after a crash the old member must expire first), and the HTTP port - liveness
        # included - must not wait for it. Readiness says "connecting" meanwhile.
        self._connecting = asyncio.create_task(self._connect_kafka(), name="kafka-connect")
        self.started = True
        log.info("service started; connecting to Kafka", kafka=s.kafka_bootstrap_servers)

    async def migrate(self, pool: asyncpg.Pool) -> list[str]:
        """Apply the database migrations, then seal what the event log still holds plain
        (events stored before personal data was sealed): once, and safe to run again."""
        applied = await migrate(pool, self.migrations)
        with tenancy.all_tenants():
            if self.subject_keys is not None and self.key_role is KeyRole.OWNER:
                sealed = await seal_plain_events(pool, self.subject_keys)
                if sealed:
                    log.info("personal data sealed in events stored before", events=sealed)
            async with pool.acquire() as conn:
                if slow := await tenancy.functions_not_leakproof(conn):
                    log.warning(
                        "filters calling these functions cannot use their indexes under"
                        " row-level security: a superuser marks them LEAKPROOF with"
                        " deploy/postgres/leakproof.sql",
                        functions=slow,
                    )
        return applied

    async def _connect_kafka(self) -> None:
        s = self.settings
        delay = 0.5
        while True:
            try:
                if s.kafka_create_topics and self._topics:
                    await ensure_topics(
                        s.kafka_bootstrap_servers,
                        self._topics,
                        s.kafka_replication_factor,
                        self.kafka_security,
                    )
                await self.producer.start()
                await self.broker.start()
                break
            except Exception as exc:  # the broker is not there yet: try again, quietly
                for stop in (self.broker.stop, self.producer.stop):
                    with suppress(Exception):
                        await stop()
                log.warning("kafka not reachable yet", error=f"{type(exc).__name__}: {exc}",
                            retry_in_s=delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.jobs = JobSupervisor(self._jobs() if s.runs(Part.JOBS) else [])
        self.jobs.start()
        _settle_heap()
        self.kafka_connected.set()
        log.info("kafka connected")
        await self._watch_broker()

    async def _watch_broker(self) -> None:
        """Notice when the broker answers again after an outage (the log held back)."""
        while True:
            await asyncio.sleep(1.0)
            if broker_outage.in_outage and await self.broker.ping(1.0):
                broker_outage.end()

    async def connected(self) -> None:
        """Wait until the producer, the subscribers and the jobs run (for tests and tools)."""
        await self.kafka_connected.wait()

    async def stop(self) -> None:
        """Stop in order, each step even if one before it failed (or never started)."""
        self.started = False
        # Subscribers first: in-flight batches finish (within graceful_timeout) and commit.
        # Then jobs finish their pass; the producer they publish with goes after them.
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("kafka connection", self._stop_connecting),
            ("kafka subscribers", self.broker.stop),
            *((f"outage probe {o.name}", o.stop) for o in self.outages),
            ("background jobs", lambda: self.jobs.stop(self.settings.jobs_shutdown_s)),
            ("kafka producer", self.producer.stop),
        ]
        if self.feed is not None:
            steps.append(("append feed", self.feed.stop))
        if self._pool is not None:
            steps.append(("database pool", self._pool.close))
        # Last: the spans of everything above, exported off the event loop.
        steps.append(("span export", lambda: asyncio.to_thread(self.tracer.shutdown)))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.exception("stopping failed; going on", step=what)
        log.info("service stopped")

    async def _stop_connecting(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with suppress(asyncio.CancelledError):
                await self._connecting

    def _jobs(self) -> list[Job]:
        jobs: list[Job] = []
        feed = self.feed
        assert feed is not None
        if self._route is not None:
            count = self.settings.outbox_relay_shards
            self.relays = [
                OutboxRelay(
                    self.pool,
                    self.producer,
                    self._route,
                    source=self._publish_from,
                    batch_size=self.settings.outbox_batch_size,
                    poll_interval_s=self.settings.outbox_poll_interval_s,
                    metrics=self.metrics,
                    shard=Shard(index, count),
                    tracer=self.tracer,
                )
                for index in range(count)
            ]
            for relay in self.relays:
                job = "outbox-relay" + ("" if count == 1 else relay.name.removeprefix(relay.family))
                jobs.append(
                    Job(
                        job,
                        lambda relay=relay: relay.run(feed),  # type: ignore[misc]
                        relay.stop,
                        lambda relay=relay: relay.last_error,  # type: ignore[misc]
                    )
                )
        if self._watermark_topics and self.relays:
            marks = self.watermarks = WatermarkPublisher(
                self.pool,
                self.producer,
                table=self._publish_from.value,
                relay=self.relays[0].family,
                topics=self._watermark_topics,
                producer_name=self.settings.service_name,
                interval_s=self.settings.watermark_interval_s,
                allowance_s=self.settings.watermark_allowance_s,
                metrics=self.metrics,
            )
            jobs.append(Job("watermarks", marks.run, marks.stop, lambda: marks.last_error))
        self.timer_schedulers = []
        for lane in self._timer_lanes:
            timers = TimerScheduler(
                self.pool,
                {kind: self._timer_handlers[kind] for kind in lane.kinds},
                batch_size=self.settings.timer_batch_size,
                poll_interval_s=self.settings.timer_poll_interval_s,
                on_fired=self._timer_fired,
                gate=lane.gate,
                tracer=self.tracer,
            )
            self.timer_schedulers.append(timers)
            kinds = "+".join(sorted(lane.kinds))
            name = "timers" if len(self._timer_lanes) == 1 else f"timers:{kinds}"
            jobs.append(Job(name, timers.run, timers.stop,
                            lambda timers=timers: timers.last_error))  # type: ignore[misc]  # fmt: skip
        self.timers = self.timer_schedulers[0] if self.timer_schedulers else None
        if self.subject_keys is not None and self.key_role is KeyRole.OWNER:
            keys = SubjectKeyPublisher(self.pool, self.producer)
            jobs.append(Job("subject-keys", keys.run, keys.stop, lambda: keys.last_error))
        elif self.subject_keys is not None:
            copy = self.key_replica = SubjectKeyReplica(
                self.pool,
                self.subject_keys,
                self.settings.kafka_bootstrap_servers,
                self.kafka_security,
            )
            jobs.append(Job("subject-key-replica", copy.run, copy.stop, copy.behind))
        if self._tenants is TenantRegistry.OWNER:
            tenants = TenantPublisher(self.pool, self.producer, self.settings.service_name)
            jobs.append(Job("tenant-publisher", tenants.run, tenants.stop,
                            lambda: tenants.last_error))  # fmt: skip
        elif self._tenants is TenantRegistry.REPLICA:
            replica = TenantReplica(
                self.pool, self.settings.kafka_bootstrap_servers, self.kafka_security
            )
            jobs.append(Job("tenant-replica", replica.run, replica.stop, replica.behind))
        for name, work in self._own_jobs.items():
            jobs.append(Job(name, lambda work=work: work(self)))  # type: ignore[misc]
        return jobs

    def _timer_fired(self, kind: str, lateness_s: float) -> None:
        self.metrics.timers_fired.labels(kind).inc()
        self.metrics.timer_lateness.labels(kind).observe(max(lateness_s, 0.0))

    async def _refresh_metrics(self) -> None:
        m = self.metrics
        if self._pool is not None:
            idle = self._pool.get_idle_size()
            m.pool_size.labels("in_use").set(self._pool.get_size() - idle)
            m.pool_size.labels("idle").set(idle)
            m.pool_max.set(self._pool.get_max_size())
        for name, state in self.jobs.states.items():
            m.job_restarts.labels(name).set(state.restarts)
        with suppress(Exception), tenancy.all_tenants():  # a scrape in an outage still answers
            if self.relays:
                relay = self.relays[0]
                m.outbox_backlog.labels(relay.family).set(await relay.backlog())
            if Component.TIMERS in self.components and self._pool is not None:
                async with self._pool.acquire() as conn:
                    m.timers_pending.set(await pending_count(conn))
                    m.timers_overdue.set(await overdue_count(conn, datetime.now(UTC)))

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # what did start (the pool, the producer) is closed again
            raise
        try:
            yield
        finally:
            await self.stop()

    async def database_writable(self) -> bool:
        """Whether the database takes writes (a read-only one still answers `SELECT 1`)."""
        async with asyncio.timeout(2), self.pool.acquire() as conn:
            return bool(await conn.fetchval(_WRITABLE))

    async def dependencies_available(self) -> bool:
        """The probe a paused consumer waits on: writable database, reachable broker."""
        return await self.database_writable() and await self.broker.ping(2.0)

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state; all "ok" means ready for traffic."""
        checks: dict[str, str] = {}
        try:
            checks["database"] = "ok" if await self.database_writable() else "read-only"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if not self.kafka_connected.is_set():
            checks["kafka"] = "connecting"
        else:
            checks["kafka"] = (
                "ok" if self.started and await self.broker.ping(2.0) else "unavailable"
            )
        checks |= self.jobs.health()
        for outage in self.outages:
            if outage.error is not None:
                checks[f"consumer:{outage.name}"] = f"paused: {outage.error[:200]}"
        return checks
