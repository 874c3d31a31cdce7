-- Customers as the directory publishes them (ticketing.directory.v1): the latest profile
-- as published (its contacts sealed, opened only to send) and what planning needs of it.
CREATE TABLE customers (
    tenant_id         text NOT NULL,
    customer_id       text NOT NULL,
    profile           jsonb NOT NULL,
    preferred_channel text,
    language          text,
    time_zone         text,
    has_messenger     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, customer_id)
);
SELECT helpdesk_isolate('customers');
