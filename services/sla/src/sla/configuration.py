"""Tenants' calendars and policies: versioned rows, and the `Rules` a batch of clocks reads.

Every save writes a new version (a delete writes one without a spec), so a clock's
provenance (policy and calendar version) always names a row that still exists. Parsed
versions are cached for the life of the process, which is safe because a version never
changes; only "which version is current" is read again for each batch, in one statement.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from helpdesk_contracts import PolicyRef
from helpdesk_runtime.db import Connection
from helpdesk_runtime.logging import get_logger
from sla.domain.calendar import BusinessCalendar, CalendarSpec
from sla.domain.clocks import BusinessTime
from sla.domain.policies import Policy, PolicySpec, TicketFacts, select

log = get_logger(__name__)
ALWAYS = BusinessCalendar.always()


class Kind(StrEnum):
    CALENDAR = "calendar"
    POLICY = "policy"


_TABLE = {Kind.CALENDAR: ("calendars", "calendar_id"), Kind.POLICY: ("policies", "policy_id")}


@dataclass(frozen=True)
class Saved:
    """A version of a calendar or policy as stored."""

    id: str
    version: int
    spec: dict[str, Any] | None  # None: deleted in this version


LATEST = 2**63 - 1
"""A revision later than any: the configuration as it is now."""


async def save(
    conn: Connection, kind: Kind, tenant_id: str, item_id: str, spec: dict[str, Any] | None,
    saved_by: str,
) -> int:  # fmt: skip
    """Write the next version (spec None deletes) under the tenant's next revision; the
    version's number. The revision row stays locked until commit, so a tenant's revisions
    commit in order."""
    table, key = _TABLE[kind]
    # First the revision, whose row lock serialises the tenant's saves; then the version, in
    # a statement of its own so that it sees the saves committed while this one waited.
    revision: int = await conn.fetchval(
        "INSERT INTO tenant_revisions AS r (tenant_id, revision) VALUES ($1, 1)"
        " ON CONFLICT (tenant_id) DO UPDATE SET revision = r.revision + 1 RETURNING revision",
        tenant_id,
    )
    version: int = await conn.fetchval(
        f"INSERT INTO {table} (tenant_id, {key}, version, revision, spec, saved_by)"
        f" SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4::jsonb, $5"
        f" FROM {table} WHERE tenant_id = $1 AND {key} = $2 RETURNING version",
        tenant_id, item_id, revision, None if spec is None else json.dumps(spec), saved_by,
    )  # fmt: skip
    return version


async def revisions(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, int]:
    """Each tenant's configuration revision now (0: never configured)."""
    tenants = list(set(tenant_ids))
    rows = await conn.fetch(
        "SELECT tenant_id, revision FROM tenant_revisions WHERE tenant_id = ANY($1::text[])",
        tenants,
    )
    found = {r["tenant_id"]: r["revision"] for r in rows}
    return {t: found.get(t, 0) for t in tenants}


async def current(
    conn: Connection, kind: Kind, tenant_ids: Iterable[str] | Mapping[str, int],
    item_id: str | None = None,
) -> dict[tuple[str, str], Saved]:  # fmt: skip
    """The latest version of each (tenant, id) not deleted; as of a revision per tenant when
    given a mapping {tenant: revision}."""
    table, key = _TABLE[kind]
    at = dict(tenant_ids) if isinstance(tenant_ids, Mapping) else dict.fromkeys(tenant_ids, LATEST)
    rows = await conn.fetch(
        f"""
        SELECT * FROM (
            SELECT DISTINCT ON (c.tenant_id, c.{key}) c.tenant_id, c.{key} AS id, c.version,
                c.spec::text AS spec
            FROM {table} c JOIN unnest($1::text[], $2::bigint[]) AS t(tenant, revision)
                ON c.tenant_id = t.tenant AND c.revision <= t.revision
            WHERE $3::text IS NULL OR c.{key} = $3
            ORDER BY c.tenant_id, c.{key}, c.version DESC
        ) AS latest WHERE spec IS NOT NULL
        """,
        list(at), list(at.values()), item_id,
    )  # fmt: skip
    return {(r["tenant_id"], r["id"]): _saved(r) for r in rows}


async def versions(
    conn: Connection, kind: Kind, tenant_id: str, item_id: str
) -> list[tuple[Saved, str]]:
    """Every version of one item, oldest first, with who saved it."""
    table, key = _TABLE[kind]
    rows = await conn.fetch(
        f"SELECT {key} AS id, version, spec::text AS spec, saved_by FROM {table}"
        f" WHERE tenant_id = $1 AND {key} = $2 ORDER BY version",
        tenant_id, item_id,
    )  # fmt: skip
    return [(_saved(r), r["saved_by"]) for r in rows]


def _saved(row: Any) -> Saved:
    return Saved(
        row["id"], row["version"], None if row["spec"] is None else json.loads(row["spec"])
    )


class Catalogue:
    """Parsed calendar and policy versions, kept for the life of the process."""

    def __init__(self) -> None:
        self._calendars: dict[tuple[str, str, int], BusinessCalendar] = {}
        self._policies: dict[tuple[str, str, int], Policy] = {}

    def policy(self, tenant_id: str, saved: Saved) -> Policy:
        key = (tenant_id, saved.id, saved.version)
        if key not in self._policies:
            assert saved.spec is not None
            spec = PolicySpec.model_validate(saved.spec)
            self._policies[key] = Policy(saved.id, saved.version, spec)
        return self._policies[key]

    def calendar(self, tenant_id: str, saved: Saved) -> BusinessCalendar:
        key = (tenant_id, saved.id, saved.version)
        if key not in self._calendars:
            assert saved.spec is not None
            self._calendars[key] = BusinessCalendar.from_spec(
                CalendarSpec.model_validate(saved.spec)
            )
        return self._calendars[key]

    def known_calendar(self, tenant_id: str, ref: PolicyRef) -> BusinessCalendar | None:
        if ref.calendar_id is None or ref.calendar_version is None:
            return None
        return self._calendars.get((tenant_id, ref.calendar_id, ref.calendar_version))

    async def rules(
        self, conn: Connection, tenants: Iterable[str] | Mapping[str, int],
        refs: Iterable[tuple[str, PolicyRef]] = (),
    ) -> "TenantRules":  # fmt: skip
        """The rules for a batch: the tenants' policies and calendars (now, or as of the
        revision given per tenant), and the calendar versions of the clocks it will touch.

        The revisions are read first and the configuration as of them, so what a batch
        records as its revision is exactly what it applied, even if an admin saves meanwhile.
        """
        if not isinstance(tenants, Mapping):
            tenants = await revisions(conn, tenants)
        policies = await current(conn, Kind.POLICY, tenants)
        calendars = await current(conn, Kind.CALENDAR, tenants)
        wanted = {
            (tenant, ref.calendar_id, ref.calendar_version)
            for tenant, ref in refs
            if ref.calendar_id is not None and ref.calendar_version is not None
            and (tenant, ref.calendar_id, ref.calendar_version) not in self._calendars
        }  # fmt: skip
        if wanted:
            rows = await conn.fetch(
                "SELECT c.tenant_id, c.calendar_id AS id, c.version, c.spec::text AS spec"
                " FROM calendars c JOIN unnest($1::text[], $2::text[], $3::int[]) AS w(t, i, v)"
                " ON c.tenant_id = w.t AND c.calendar_id = w.i AND c.version = w.v",
                *(list(column) for column in zip(*wanted, strict=True)),
            )
            for row in rows:
                if row["spec"] is not None:
                    self.calendar(row["tenant_id"], _saved(row))
        by_tenant: dict[str, list[Policy]] = {}
        for (tenant, _), saved in policies.items():
            by_tenant.setdefault(tenant, []).append(self.policy(tenant, saved))
        current_calendars = {key: (saved.version, self.calendar(key[0], saved))
                             for key, saved in calendars.items()}  # fmt: skip
        return TenantRules(self, by_tenant, current_calendars, dict(tenants))


class TenantRules:
    """`clocks.Rules` over what `Catalogue.rules` loaded."""

    def __init__(
        self,
        catalogue: Catalogue,
        policies: dict[str, list[Policy]],
        calendars: dict[tuple[str, str], tuple[int, BusinessCalendar]],
        revisions: dict[str, int],
    ) -> None:
        self._catalogue = catalogue
        self._policies = policies
        self._calendars = calendars
        self.revisions = revisions
        """The configuration revision of each tenant these rules are."""
        self._overlay: dict[tuple[str, str, int], BusinessCalendar] = {}  # drafts (what-if)

    def select(self, tenant_id: str, ticket: TicketFacts) -> tuple[Policy, int | None]:
        policy = select(self._policies.get(tenant_id, ()), ticket)
        calendar_id = policy.spec.calendar_id
        if calendar_id is None:
            return policy, None
        found = self._calendars.get((tenant_id, calendar_id))
        return policy, found[0] if found else None

    def with_drafts(
        self, tenant_id: str, policies: Mapping[str, PolicySpec],
        calendars: Mapping[str, CalendarSpec], removed: Iterable[str] = (),
    ) -> "TenantRules":  # fmt: skip
        """These rules with draft policies and calendars in place of (or beside) the saved
        ones, for a what-if: each draft gets the next version number, and nothing of it is
        kept beyond the returned rules."""
        gone = {*removed, *policies}
        kept = [p for p in self._policies.get(tenant_id, []) if p.id not in gone]
        versions = {p.id: p.version for p in self._policies.get(tenant_id, [])}
        drafted = [Policy(pid, versions.get(pid, 0) + 1, spec) for pid, spec in policies.items()]
        own = dict(self._calendars)
        overlay = dict(self._overlay)
        for cid, spec in calendars.items():
            version = own[(tenant_id, cid)][0] + 1 if (tenant_id, cid) in own else 1
            calendar = BusinessCalendar.from_spec(spec)
            own[(tenant_id, cid)] = (version, calendar)
            overlay[(tenant_id, cid, version)] = calendar
        rules = TenantRules(
            self._catalogue, {**self._policies, tenant_id: kept + drafted}, own, self.revisions
        )
        rules._overlay = overlay
        return rules

    def calendar(self, tenant_id: str, policy: PolicyRef) -> BusinessTime:
        if not policy.business_hours:
            return ALWAYS
        if policy.calendar_id is not None and policy.calendar_version is not None:
            draft = self._overlay.get((tenant_id, policy.calendar_id, policy.calendar_version))
            if draft is not None:
                return draft
        known = self._catalogue.known_calendar(tenant_id, policy)
        if known is None:
            # The API refuses to delete a calendar a policy uses; should one be missing
            # anyway, the clock counts calendar time rather than stopping the consumer.
            log.warning(
                "calendar missing; counting calendar time", tenant_id=tenant_id,
                calendar_id=policy.calendar_id, version=policy.calendar_version,
            )  # fmt: skip
            return ALWAYS
        return known
