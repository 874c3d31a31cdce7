-- The tenants each outside publisher may open tickets for. Its messages arrive on a topic
-- only it may write to (Kafka ACLs), so the topic names the publisher and this table says
-- what it may do; anything else is refused and the publisher told why.
CREATE TABLE publisher_tenants (
    publisher   text        NOT NULL,
    tenant_id   text        NOT NULL,
    allowed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (publisher, tenant_id)
);
