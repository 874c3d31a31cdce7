"""A ticket list at production scale, loaded with COPY (the list benchmark's data).

Tenants follow a Zipf-like curve: the largest holds `largest` tickets and the rest share the
remainder in proportion to 1/rank. Inside a tenant the shape is what a helpdesk accumulates
over a year: most tickets solved or closed, the unsolved ones recent; ~1 agent per 1,500
tickets; tags and words drawn from Zipf-like vocabularies, so some words are in one ticket
in ten and most in a few dozen, and a tenant's rarer words and tags are its own.

Rows are generated in a worker thread while PostgreSQL turns the previous chunk's text into
`search` (to_tsvector('simple', ...), as the projection does) from an unlogged staging
table: the two cores work at the same time. The table's indexes are dropped first and
rebuilt from their own definitions afterwards (bulk building is far cheaper than a million
inserts into two GIN indexes), then the table is vacuumed and analyzed as autovacuum would
leave it.
"""

import asyncio
import itertools
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

NOW = datetime.now(UTC).replace(microsecond=0)
YEAR = timedelta(days=365)
CHUNK = 25_000
WORKING = ("new", "open", "pending", "on_hold")

# Most frequent first: a helpdesk's everyday words, then the most used tags.
_EVERYDAY = """
    the to my i and a is not it for on in with of this account invoice order please cannot
    error help payment login password refund delivery app email page update since working
    charged wrong issue problem access card subscription plan user data report export import
    sync crash slow server timeout address shipping cancel return package tracking number
    phone reset two factor code verification license seat upgrade downgrade trial discount
    coupon tax vat receipt statement bank transfer declined currency mobile android iphone
    browser chrome firefox safari windows mac printer pdf attachment upload download file
    folder permission admin team invite notification calendar meeting integration api
    webhook token key limit quota storage backup restore deleted missing duplicate blank
    screen button form field setting profile language timezone date time yesterday today
    morning urgent again still after before when why how does anymore customer support
    agent ticket reply response thanks hello regards best kind
"""
_COMMON_TAGS = """
    billing bug login refund shipping feature-request vip urgent mobile api password invoice
    onboarding cancellation integration performance outage security gdpr enterprise
"""
_REAL_WORDS = _EVERYDAY.split()
_TOP_TAGS = _COMMON_TAGS.split()


def _pseudo_words(n: int, rng: random.Random, taken: set[str]) -> list[str]:
    """Pronounceable made-up words for the long tail (parsed by to_tsvector as one word)."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: list[str] = []
    while len(words) < n:
        word = "".join(rng.choice(syllables) for _ in range(rng.choice((3, 3, 4))))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _zipf_weights(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1 / (rank**s) for rank in range(1, n + 1)))


@dataclass(frozen=True)
class Vocabulary:
    """Words and tags, most frequent first, with cumulative Zipf weights for `choices`.

    The head (everyday words, the common tags) is shared by every tenant; below it each
    tenant ranks the same names differently (its products, its own tags), so a word common
    in one tenant can be rare in the next, as the planner meets it in production."""

    words: list[str]
    word_weights: list[float]
    tags: list[str]
    tag_weights: list[float]

    SHARED_WORDS = 1_000
    SHARED_TAGS = len(_TOP_TAGS)

    @classmethod
    def make(cls, words: int = 30_000, tags: int = 3_000) -> "Vocabulary":
        rng = random.Random(7)
        taken = set(_REAL_WORDS)
        word_list = list(_REAL_WORDS) + _pseudo_words(words - len(_REAL_WORDS), rng, taken)
        tag_list = list(_TOP_TAGS) + [
            f"{w}-{rng.choice(_REAL_WORDS[20:])}"
            for w in _pseudo_words(tags - len(_TOP_TAGS), rng, taken)
        ]
        return cls(word_list, _zipf_weights(words, 1.0), tag_list, _zipf_weights(tags, 1.1))

    def word(self, tenant: "Tenant", rank: int) -> str:
        """The tenant's `rank`-th most frequent word (0 is the most frequent)."""
        return _ranked(self.words, self.SHARED_WORDS, tenant.rank)[rank]

    def tag(self, tenant: "Tenant", rank: int) -> str:
        return _ranked(self.tags, self.SHARED_TAGS, tenant.rank)[rank]


def _ranked(names: list[str], shared: int, tenant_rank: int) -> list[str]:
    """`names` as one tenant ranks them: the shared head, then the tail rotated."""
    tail = names[shared:]
    turn = tenant_rank * 7_919 % len(tail)
    return names[:shared] + tail[turn:] + tail[:turn]


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    rank: int  # 1 is the largest
    tickets: int
    agents: int


def tenants(total: int, largest: int, count: int, prefix: str) -> list[Tenant]:
    """`count` tenants holding `total` tickets, the largest `largest`, the rest ~1/rank."""
    weights = [1 / rank for rank in range(2, count + 1)]
    rest = total - largest
    sizes = [largest] + [max(1, round(rest * w / sum(weights))) for w in weights]
    sizes[-1] += total - sum(sizes)
    return [
        Tenant(f"{prefix}{rank:02d}", rank, n, max(3, round(n / 1_500)))
        for rank, n in enumerate(sizes, start=1)
    ]


_STATUS_BY_AGE = (  # (younger than days, [(status, weight)])
    (3, (("new", 20), ("open", 40), ("pending", 20), ("on_hold", 5), ("solved", 15))),
    (30, (("new", 2), ("open", 15), ("pending", 10), ("on_hold", 3), ("solved", 50),
          ("closed", 20))),
    (math.inf, (("open", 2), ("pending", 1), ("on_hold", 1), ("solved", 6), ("closed", 90))),
)  # fmt: skip
_PRIORITIES = (("low", 0, 20), ("normal", 1, 60), ("high", 2, 15), ("urgent", 3, 5))
_TYPES = (("question", 50), ("incident", 30), ("problem", 5), ("task", 15))
_CHANNELS = (("email", 50), ("web", 25), ("chat", 12), ("phone", 8), ("messenger", 3),
             ("social", 2))  # fmt: skip
_TAG_COUNTS = ((0, 20), (1, 35), (2, 25), (3, 15), (4, 5))


def _pick(rng: random.Random, options: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(options, weights=[o[-1] for o in options])[0]


def _chunk_rows(
    vocab: Vocabulary, tenant: Tenant, first: int, count: int, seed: int
) -> list[tuple[Any, ...]]:
    """Rows `first`..`first + count` of the tenant's tickets (numbered in opening order)."""
    rng = random.Random(seed)
    words_per_row = [rng.randint(3, 8) + rng.randint(10, 40) for _ in range(count)]
    vocabulary = _ranked(vocab.words, vocab.SHARED_WORDS, tenant.rank)
    tag_names = _ranked(vocab.tags, vocab.SHARED_TAGS, tenant.rank)
    words = iter(rng.choices(vocabulary, cum_weights=vocab.word_weights, k=sum(words_per_row)))
    rows: list[tuple[Any, ...]] = []
    for i, n_words in enumerate(words_per_row):
        number = first + i + 1
        opened = NOW - YEAR * (1 - (number - rng.random()) / tenant.tickets)
        age_days = (NOW - opened) / timedelta(days=1)
        status = next(
            _pick(rng, options)[0] for limit, options in _STATUS_BY_AGE if age_days < limit
        )
        done = status in ("solved", "closed")
        # Solved ones were last touched days after opening, unsolved ones lately.
        since = timedelta(days=rng.expovariate(1 / 3))
        updated = (
            opened + min(since, (NOW - opened) * rng.random())
            if done
            else NOW - min((NOW - opened) * rng.random(), timedelta(days=rng.expovariate(1 / 5)))
        )
        text = [next(words) for _ in range(n_words)]
        subject = " ".join(text[: n_words // 5 + 2]).capitalize()
        description = " ".join(text[n_words // 5 + 2 :]).capitalize() + "."
        priority, rank, _ = _pick(rng, _PRIORITIES)
        unassigned = status == "new" and rng.random() < 0.7
        agent = int(tenant.agents * rng.random() ** 1.5)  # some agents carry more
        tags = sorted(set(rng.choices(tag_names, cum_weights=vocab.tag_weights,
                                      k=_pick(rng, _TAG_COUNTS)[0])))  # fmt: skip
        replies = rng.randint(0, 4)
        customer = rng.randrange(max(1, tenant.tickets // 3))
        org = rng.randrange(max(1, tenant.tickets // 50))
        rows.append((
            tenant.tenant_id, uuid.UUID(int=rng.getrandbits(128), version=4), number,
            2 + 2 * replies, subject, status, priority, rank, _pick(rng, _TYPES)[0],
            _pick(rng, _CHANNELS)[0], f"c-{customer}", f"Customer {customer}",
            f"c{customer}@example.com", f"org-{org}", rng.choice(("free", "pro", "enterprise")),
            None if unassigned else f"agent-{agent}", f"group-{agent % 12}", tags, "{}", [],
            None, None, [], replies, max(0, replies - 1), rng.randint(0, 2), opened, updated,
            updated if done else None, updated if status == "closed" else None,
            f"{subject}\n{description}",
        ))  # fmt: skip
    return rows


_COLUMNS = (
    "tenant_id, ticket_id, number, version, subject, status, priority, priority_rank, type,"
    " channel, requester_id, requester_name, requester_email, organisation_id, tier,"
    " assignee_id, group_id, tags, custom_fields, followers, merged_into, problem_id,"
    " incidents, public_replies, customer_replies, internal_notes, opened_at, updated_at,"
    " solved_at, closed_at"
)


@dataclass(frozen=True)
class Seeded:
    tenants: list[Tenant]
    vocabulary: Vocabulary
    rows: int
    generate_copy_s: float
    index_s: float
    vacuum_s: float

    @property
    def total_s(self) -> float:
        return self.generate_copy_s + self.index_s + self.vacuum_s


async def _index_definitions(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """How to drop and how to rebuild ticket_list's indexes, exactly as the migrations made
    them (constraint indexes through their constraints)."""
    rows = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, c.conname,"
        " pg_get_indexdef(i.indexrelid) AS indexdef, pg_get_constraintdef(c.oid) AS condef"
        " FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid"
        "  AND c.conrelid = i.indrelid"
        " WHERE i.indrelid = 'ticket_list'::regclass ORDER BY 1"
    )
    drops, builds = [], []
    for r in rows:
        if r["conname"]:
            drops.append(f"ALTER TABLE ticket_list DROP CONSTRAINT {r['conname']}")
            builds.append(f"ALTER TABLE ticket_list ADD CONSTRAINT {r['conname']} {r['condef']}")
        else:
            drops.append(f"DROP INDEX {r['name']}")
            builds.append(r["indexdef"])
    return drops, builds


async def seed(dsn: str, *, total: int, largest: int, count: int = 50, prefix: str = "t") -> Seeded:
    """Fill an empty ticket_list (and `tenants`) with `total` generated tickets."""
    vocab = Vocabulary.make()
    plan = tenants(total, largest, count, prefix)
    copier, converter = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await copier.copy_records_to_table(
            "tenants", records=[(t.tenant_id, f"Tenant {t.tenant_id}", NOW) for t in plan],
            columns=["tenant_id", "name", "created_at"],
        )  # fmt: skip
        drops, builds = await _index_definitions(copier)
        for statement in drops:
            await copier.execute(statement)
        started = time.perf_counter()
        converting: asyncio.Task[Any] | None = None
        for n, (tenant, first) in enumerate(
            (t, f) for t in plan for f in range(0, t.tickets, CHUNK)
        ):
            count_ = min(CHUNK, tenant.tickets - first)
            rows = await asyncio.to_thread(_chunk_rows, vocab, tenant, first, count_, n)
            staging = f"seed_{n}"
            await copier.execute(
                f"CREATE UNLOGGED TABLE {staging} AS SELECT {_COLUMNS}, ''::text AS search_text"
                " FROM ticket_list WITH NO DATA"
            )
            await copier.copy_records_to_table(staging, records=rows)
            if converting:
                await converting
            converting = asyncio.create_task(
                converter.execute(
                    f"INSERT INTO ticket_list ({_COLUMNS}, search)"
                    f" SELECT {_COLUMNS}, to_tsvector('simple', search_text) FROM {staging};"
                    f" DROP TABLE {staging}"
                )
            )
        if converting:
            await converting
        generate_copy_s = time.perf_counter() - started

        started = time.perf_counter()
        for conn in (copier, converter):
            await conn.execute("SET maintenance_work_mem = '256MB'")
        # Two at a time (one per core), the GIN indexes (the slowest) first.
        queue = iter(sorted(builds, key=lambda b: "USING gin" not in b))

        async def build(conn: asyncpg.Connection) -> None:
            for statement in queue:
                await conn.execute(statement)

        await asyncio.gather(build(copier), build(converter))
        index_s = time.perf_counter() - started
        started = time.perf_counter()
        await copier.execute("VACUUM (ANALYZE) ticket_list")
        vacuum_s = time.perf_counter() - started
        rows_now = await copier.fetchval("SELECT count(*) FROM ticket_list")
    finally:
        await copier.close()
        await converter.close()
    return Seeded(plan, vocab, rows_now, generate_copy_s, index_s, vacuum_s)
