-- Each ticket's SLA clocks as the SLA service publishes them (sla.events.v1): ticketing
-- never reads the SLA database. The list shows the next deadline of the running clocks
-- (an overdue one first), so agents can sort by "breaching soonest".
CREATE TABLE sla_clocks (
    clock_id   uuid        PRIMARY KEY,
    tenant_id  text        NOT NULL,
    ticket_id  uuid        NOT NULL,
    metric     text        NOT NULL,
    running    boolean     NOT NULL,
    deadline   timestamptz,
    breached   boolean     NOT NULL DEFAULT false
);
CREATE INDEX sla_clocks_running ON sla_clocks (ticket_id) WHERE running;

-- 'infinity' when no clock runs: a row comparison then pages through the list without NULLs.
ALTER TABLE ticket_list
    ADD COLUMN sla_deadline timestamptz NOT NULL DEFAULT 'infinity',
    ADD COLUMN sla_breached boolean NOT NULL DEFAULT false;
CREATE INDEX ticket_list_sla ON ticket_list (tenant_id, sla_deadline, ticket_id);
