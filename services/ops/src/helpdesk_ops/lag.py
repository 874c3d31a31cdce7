"""Consumer lag and event age per service and consumer group.

Lag is what a group has yet to read: the partition's end offset minus the group's
committed offset. Age is how long the oldest unread record has waited: now minus the
timestamp of the record at the committed offset. Age says more than lag during the
month-start spike: 50,000 records behind is fine if they are two seconds old, and an
SLA breach is only ever declared once the watermark passes, so old events mean late
verdicts.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from aiokafka import TopicPartition

from helpdesk_ops.kafka_tools import admin_client, first_records_from, reader

SERVICES = ("ticketing", "sla", "feedback", "notifications")


def service_of(group: str) -> str:
    """The service a consumer group belongs to: our groups are named `<service>-<what>`
    (ticketing-intake, sla-tickets, ...). Anyone else's group shows as "-"."""
    prefix = group.split("-", 1)[0]
    return prefix if prefix in SERVICES else "-"


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int
    end: int
    lag: int
    oldest_unconsumed_at: datetime | None


@dataclass(frozen=True)
class TopicLag:
    """One consumer group's position on one topic."""

    service: str
    group: str
    topic: str
    lag: int
    oldest_age_s: float | None
    """Seconds since the oldest unconsumed record was written; None when nothing waits."""
    partitions: list[PartitionLag] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        for p in data["partitions"]:
            at = p["oldest_unconsumed_at"]
            p["oldest_unconsumed_at"] = at.isoformat() if at else None
        return data


async def consumer_lag(
    bootstrap: str,
    *,
    groups: list[str] | None = None,
    services: list[str] | None = None,
    now: datetime | None = None,
    timeout_s: float = 10.0,
) -> list[TopicLag]:
    """Lag and age of every consumer group (or those matching `groups`, shell patterns,
    or belonging to `services`), per topic, sorted by service and group."""
    async with admin_client(bootstrap) as admin:
        listed = sorted({str(g[0]) for g in await admin.list_consumer_groups()})
        chosen = [
            g for g in listed
            if (not groups or any(fnmatch.fnmatchcase(g, p) for p in groups))
            and (not services or service_of(g) in services)
        ]  # fmt: skip
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in chosen:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {tp: om.offset for tp, om in offsets.items() if om.offset >= 0}

    every_tp = sorted({tp for offsets in committed.values() for tp in offsets})
    async with reader(bootstrap) as consumer:
        ends = await consumer.end_offsets(every_tp) if every_tp else {}
        # The oldest unconsumed record of each (partition, offset) the groups wait at; two
        # groups at the same offset share the read.
        waiting = {
            (tp, offset)
            for offsets in committed.values()
            for tp, offset in offsets.items()
            if ends.get(tp, 0) > offset
        }
        stamps: dict[tuple[TopicPartition, int], datetime] = {}
        rounds: list[dict[TopicPartition, int]] = []
        for tp, offset in sorted(waiting):
            free = next((r for r in rounds if tp not in r), None)
            if free is None:
                free = {}
                rounds.append(free)
            free[tp] = offset
        for round_ in rounds:  # one assignment seeks a partition to one offset
            for tp, record in (await first_records_from(consumer, round_, timeout_s)).items():
                at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
                stamps[(tp, round_[tp])] = at

    now = now or datetime.now(UTC)
    rows: list[TopicLag] = []
    for group in chosen:
        per_topic: dict[str, list[PartitionLag]] = defaultdict(list)
        for tp, offset in sorted(committed[group].items()):
            end = ends.get(tp, offset)
            lag = max(0, end - offset)
            oldest = stamps.get((tp, offset)) if lag else None
            per_topic[tp.topic].append(PartitionLag(tp.partition, offset, end, lag, oldest))
        for topic, parts in sorted(per_topic.items()):
            times = [p.oldest_unconsumed_at for p in parts if p.oldest_unconsumed_at]
            age = max(0.0, (now - min(times)).total_seconds()) if times else None
            rows.append(
                TopicLag(service_of(group), group, topic, sum(p.lag for p in parts), age, parts)
            )
    rows.sort(key=lambda r: (r.service, r.group, r.topic))
    return rows
