-- The customer directory's read model, an inline projection of the customer and
-- organisation streams in the event store (directory_projection.py): rebuilt from them.

CREATE TABLE customers (
    tenant_id        text        NOT NULL,
    customer_id      text        NOT NULL,
    version          integer     NOT NULL,
    name             text,
    organisation_id  text,
    merged_into      text,       -- a duplicate: this customer is now that one
    merged_ids       text[]      NOT NULL,  -- the duplicates merged into this one
    profile          jsonb       NOT NULL,  -- CustomerProfile, as in the events
    synced           jsonb       NOT NULL,  -- {source: last version applied from it}
    registered_at    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
CREATE INDEX customers_by_name ON customers (tenant_id, lower(name), customer_id);
CREATE INDEX customers_of_organisation ON customers (tenant_id, organisation_id);

-- Every address and external id a requester can be matched by, and the customer it belongs
-- to; the key keeps an identity to one customer (a merge moves them, the duplicate's id too).
CREATE TABLE customer_identities (
    tenant_id    text NOT NULL,
    kind         text NOT NULL,  -- id, email, phone, telegram, whatsapp, ext:<source>
    value        text NOT NULL,  -- normalised (domain/directory.py: normalise)
    customer_id  text NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);
CREATE INDEX customer_identities_of ON customer_identities (tenant_id, customer_id);

CREATE TABLE organisations (
    tenant_id           text        NOT NULL,
    organisation_id     text        NOT NULL,
    version             integer     NOT NULL,
    name                text        NOT NULL,
    tier                text        NOT NULL,
    account_manager_id  text,
    profile             jsonb       NOT NULL,  -- OrganisationProfile, as in the events
    synced              jsonb       NOT NULL,
    registered_at       timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, organisation_id)
);
CREATE INDEX organisations_by_name ON organisations (tenant_id, lower(name), organisation_id);

-- A domain belongs to one organisation of a tenant: the first to claim it keeps it.
CREATE TABLE organisation_domains (
    tenant_id        text NOT NULL,
    domain           text NOT NULL,
    organisation_id  text NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);
CREATE INDEX organisation_domains_of ON organisation_domains (tenant_id, organisation_id);

-- The customer view and the organisations' fan-out read tickets by requester and organisation.
CREATE INDEX ticket_list_requester ON ticket_list (tenant_id, requester_id, opened_at DESC);
CREATE INDEX ticket_list_requester_email ON ticket_list (tenant_id, lower(requester_email))
    WHERE requester_email IS NOT NULL;
CREATE INDEX ticket_list_organisation ON ticket_list (tenant_id, organisation_id, status)
    WHERE organisation_id IS NOT NULL;
